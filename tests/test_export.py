"""int8 and pruned model directories load through checkpoint.load; ONNX Runtime decodes like PyTorch."""
import pytest
import torch

from i2h.checkpoint import load, save
from i2h.export import OnnxDecoder, export_onnx, file_size, quantize_int8
from i2h.fast import greedy_generate
from i2h import prune as P

KW = dict(max_new_tokens=20, min_new_tokens=20)


def _fresh(path):
    b = load(path)
    b.model.text.generation_config.forced_eos_token_id = None
    return b


@pytest.fixture
def pixels():
    torch.manual_seed(3)
    return torch.randn(2, 3, 128, 128)


def test_int8_roundtrip_and_size(tiny_model_dir, tmp_path, pixels):
    b = _fresh(tiny_model_dir)
    ref = greedy_generate(b.model, pixels, **KW)
    quantize_int8(b.model)
    q = greedy_generate(b.model, pixels, **KW)
    save(b, tmp_path / "int8")
    b2 = _fresh(tmp_path / "int8")
    assert b2.model.optimized["quantization"] == "int8-dynamic"
    assert torch.equal(greedy_generate(b2.model, pixels, **KW), q)
    assert (q == ref).float().mean() > 0.5  # int8 is close, not identical
    # the HF path runs on the int8 layers too
    assert torch.equal(b2.model.generate(pixels, do_sample=False, **KW), q)


def test_structured_pruning_roundtrip(tiny_model_dir, tmp_path, pixels):
    b = _fresh(tiny_model_dir)
    before = P.decoder_params(b.model)
    P.prune_heads(b.model, 1)
    P.prune_ffn(b.model, 32)
    assert P.decoder_params(b.model) < before
    m = b.model.eval()
    ref = m.generate(pixels, do_sample=False, **KW)
    assert torch.equal(greedy_generate(m, pixels, **KW), ref)  # HF still runs the shrunk modules
    save(b, tmp_path / "pruned")
    b2 = _fresh(tmp_path / "pruned")
    assert torch.equal(greedy_generate(b2.model, pixels, **KW), ref)


def test_layer_and_magnitude_pruning():
    assert P.spread_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    from i2h.checkpoint import create

    b = create("small")
    P.prune_layers(b.model, 2)
    assert len(b.model.text.model.decoder.layers) == 2 and b.model.config.text.arch["decoder_layers"] == 2
    P.magnitude_masks(b.model, 0.5)
    assert 0.49 < P.sparsity(b.model) < 0.51
    with pytest.raises(ValueError, match="sparsity"):
        P.magnitude_masks(b.model, 1.5)


def test_onnx_matches_pytorch(tiny_model_dir, tmp_path, pixels):
    b = _fresh(tiny_model_dir)
    ref = greedy_generate(b.model, pixels, **KW)
    out = export_onnx(b, tmp_path / "onnx")
    assert file_size(out / "onnx" / "decoder.onnx") > 0
    b2 = _fresh(out)
    got = OnnxDecoder(b2.model, out / "onnx").generate(pixels, **KW)
    assert torch.equal(got, ref)


def test_cli_export_onnx_and_generate(tiny_model_dir, tmp_path, screenshot):
    from i2h.cli import main

    out = tmp_path / "m"
    assert main(["export", "--model", str(tiny_model_dir), "--format", "onnx", "--out", str(out)]) == 0
    assert main(["generate", str(screenshot), "--model", str(out), "--backend", "onnx", "--max-new-tokens", "8",
                 "--out", str(tmp_path / "html")]) == 0
    assert (tmp_path / "html" / "shot.html").read_text().startswith("<!DOCTYPE html>")
    # a model without an ONNX export: a clear error, no traceback
    assert main(["generate", str(screenshot), "--model", str(tiny_model_dir), "--backend", "onnx",
                 "--out", str(tmp_path / "x")]) == 2
