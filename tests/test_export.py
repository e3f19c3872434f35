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


def test_onnx_cache_is_one_shared_buffer_per_layer(tiny_model_dir, tmp_path, pixels):
    """The K/V buffers are written in place (no per-step copies), and ids beyond a batch row's EOS pad."""
    import onnx

    b = _fresh(tiny_model_dir)
    d = export_onnx(b, tmp_path / "onnx") / "onnx"
    graph = onnx.load(str(d / "decoder.onnx")).graph
    made_by = {o: n.op_type for n in graph.node for o in n.output}
    presents = [o.name for o in graph.output if o.name.startswith("present_")]
    assert presents and all(made_by[o] == "GroupQueryAttention" for o in presents)
    assert "Gemm" not in made_by.values()  # linears as MatMul over initializers: what the int8 quantizer rewrites
    dec = OnnxDecoder(b.model, d)
    ref = greedy_generate(b.model, pixels, **KW)
    assert torch.equal(dec.generate(pixels, **KW), ref)
    assert torch.equal(dec.generate(pixels, **KW), ref)  # buffers are per call: a second call is the same


def test_onnx_int8_quantizes_the_matmuls(tiny_model_dir, tmp_path, pixels):
    import json

    import onnx

    b = _fresh(tiny_model_dir)
    ref = greedy_generate(b.model, pixels, **KW)
    out = export_onnx(b, tmp_path / "q", int8=True)
    d = out / "onnx"
    assert json.loads((d / "meta.json").read_text())["quantization"] == "int8-block32"
    fp32 = onnx.load(str(export_onnx(b, tmp_path / "f") / "onnx" / "decoder.onnx")).graph
    weights = {t.name for t in fp32.initializer}
    linears = [n for n in fp32.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert len(linears) >= 7  # one layer's qkv, out, cross q, cross out, fc1, fc2, and the LM head
    q = onnx.load(str(d / "decoder.onnx")).graph
    assert sum(n.op_type == "MatMulNBits" for n in q.node) == len(linears)
    qweights = {t.name for t in q.initializer}
    assert not [n for n in q.node if n.op_type == "MatMul" and n.input[1] in qweights]  # no fp32 linear left
    got = OnnxDecoder(b.model, d).generate(pixels, **KW)
    assert got.shape == ref.shape and (got == ref).float().mean() > 0.5  # close, not identical


def test_predictor_backends(tiny_model_dir, tmp_path, screenshot):
    """auto = ONNX Runtime exported once into the cache, the same pages as HF generate; a model directory
    can name its backend; an explicit backend that cannot run is a clear error."""
    import json
    import shutil

    from i2h.generate import Predictor

    logs = []
    hf = Predictor.from_pretrained(tiny_model_dir, backend="hf")
    auto = Predictor.from_pretrained(tiny_model_dir, log=logs.append)
    assert auto.backend == "onnx" and len(logs) == 1 and "cached in" in logs[0]
    assert Predictor.from_pretrained(tiny_model_dir, log=logs.append).backend == "onnx" and len(logs) == 1
    a, h = auto.predict_full([screenshot], max_new_tokens=24)[0], hf.predict_full([screenshot], max_new_tokens=24)[0]
    assert a.raw == h.raw and a.tokens == h.tokens
    beam = auto.predict_full([screenshot], max_new_tokens=8, num_beams=2)[0]  # beams fall back to HF
    assert beam.html.startswith("<!DOCTYPE html>")
    assert Predictor.from_pretrained(tiny_model_dir, backend="torch").backend == "torch"
    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir, m)
    (m / "inference.json").write_text(json.dumps({"backend": "onnx-int8"}))
    assert Predictor.from_pretrained(m).backend == "onnx-int8"
    with pytest.raises(ValueError, match="preset"):
        Predictor.from_pretrained("tiny", backend="onnx")
    with pytest.raises(ValueError, match="greedily"):
        Predictor.from_pretrained(tiny_model_dir, backend="onnx").predict_full([screenshot], max_new_tokens=4,
                                                                               num_beams=2)


def test_old_onnx_export_is_named(tiny_model_dir, tmp_path):
    import json

    from i2h.checkpoint import CheckpointError

    b = _fresh(tiny_model_dir)
    d = export_onnx(b, tmp_path / "onnx") / "onnx"
    meta = json.loads((d / "meta.json").read_text())
    del meta["cache"]
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="export it again"):
        OnnxDecoder(b.model, d)


def test_cli_export_onnx_and_generate(tiny_model_dir, tmp_path, screenshot):
    from i2h.cli import main

    out = tmp_path / "m"
    assert main(["export", "--model", str(tiny_model_dir), "--format", "onnx", "--out", str(out)]) == 0
    assert main(["generate", str(screenshot), "--model", str(out), "--backend", "onnx", "--max-new-tokens", "8",
                 "--out", str(tmp_path / "html")]) == 0
    assert (tmp_path / "html" / "shot.html").read_text().startswith("<!DOCTYPE html>")
    # a preset has no weights to export: a clear error, no traceback
    assert main(["generate", str(screenshot), "--model", "tiny", "--backend", "onnx",
                 "--out", str(tmp_path / "x")]) == 2


@pytest.mark.slow
def test_bundled_model_decodes_int8_by_default_with_fp32_tokens():
    """The bundled model names onnx-int8 in its inference.json; on an example its int8 page starts with the
    same tokens as the fp32 one (the four examples agree on all 1272 when measured; 64 here for time)."""
    from pathlib import Path

    from i2h.generate import Predictor, load

    example = Path(__file__).resolve().parents[1] / "examples" / "notes-app.png"
    auto = load()
    assert auto.backend == "onnx-int8"
    fp32 = load(backend="onnx")
    a, f = auto.predict_full([example], max_new_tokens=64)[0], fp32.predict_full([example], max_new_tokens=64)[0]
    assert a.tokens == f.tokens == 64 and a.raw == f.raw
    assert isinstance(auto, Predictor)
