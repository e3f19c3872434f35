import dataclasses
import json

import pytest
import torch

from i2h.checkpoint import CheckpointError, atomic_dir, create, load, save
from i2h.config import VisionConfig, get_preset
from i2h.generate import Predictor


def test_directory_layout(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json",
            "generation_config.json"} <= names
    assert json.loads((tiny_model_dir / "config.json").read_text())["model_type"] == "i2h"
    assert not [p for p in tiny_model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_save_load_gives_identical_greedy_tokens(tiny_bundle, tiny_model_dir, screenshot):
    a = Predictor(tiny_bundle)
    b = Predictor(load(tiny_model_dir))
    for name, p in a.model.state_dict().items():
        assert torch.equal(p, b.model.state_dict()[name]), name
    pa = a.predict_full([screenshot], max_new_tokens=24)[0]
    pb = b.predict_full([screenshot], max_new_tokens=24)[0]
    assert pa.raw == pb.raw and pa.tokens == pb.tokens


def test_trained_weights_survive_save_load(tmp_path, tiny_tokenizer, screenshot):
    torch.manual_seed(1)
    bundle = create("tiny", tokenizer=tiny_tokenizer)
    with torch.no_grad():  # make the decoder say something other than EOS at once
        bundle.model.text.final_logits_bias[0, 2] = -50.0
    save(bundle, tmp_path / "m")
    again = load(tmp_path / "m")
    x = Predictor(bundle).predict_full([screenshot], max_new_tokens=16)[0]
    y = Predictor(again).predict_full([screenshot], max_new_tokens=16)[0]
    assert x.tokens == y.tokens == 16 and x.raw == y.raw and x.truncated


def test_atomic_dir_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "ckpt"
    with atomic_dir(out) as d:
        (d / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as d:
            (d / "a").write_text("2")
            raise RuntimeError("crash mid-write")
    assert (out / "a").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_load_errors_name_the_input(tmp_path):
    with pytest.raises(CheckpointError, match="no-such-model"):
        load(tmp_path / "no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a model directory"):
        load(tmp_path / "empty")


def test_pretrained_loading_path_by_local_paths(tmp_path, tiny_tokenizer):
    """The Hub path (`from_pretrained`, timm pretrained) exercised with small models saved locally."""
    import timm
    from safetensors.torch import save_file
    from transformers import BartConfig, BartForConditionalGeneration

    text_dir = tmp_path / "tiny-bart"
    bart = BartForConditionalGeneration(BartConfig(
        vocab_size=len(tiny_tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=128, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2))
    bart.save_pretrained(text_dir)
    tiny_tokenizer.save_pretrained(text_dir)

    cnn = timm.create_model("mobilenetv3_small_050", num_classes=0)
    weights = tmp_path / "mnv3.safetensors"
    save_file({k: v.contiguous() for k, v in cnn.state_dict().items()}, str(weights))

    base = get_preset("tiny")
    cfg = dataclasses.replace(
        base,
        vision=dataclasses.replace(base.vision, weights=str(weights)),
        text=dataclasses.replace(base.text, name=str(text_dir)),
        max_length=128,
    )
    bundle = create(cfg, tokenizer=tiny_tokenizer, pretrained=True)
    sd = bundle.model.state_dict()
    assert torch.equal(sd["text.model.decoder.layers.0.fc1.weight"], bart.state_dict()["model.decoder.layers.0.fc1.weight"])
    assert torch.equal(sd["vision.net.conv_stem.weight"], cnn.state_dict()["conv_stem.weight"])
    assert bundle.model.config.d_model == 32  # architecture taken from the loaded model
    save(bundle, tmp_path / "out")
    assert torch.equal(load(tmp_path / "out").model.state_dict()["projection.linear.weight"], sd["projection.linear.weight"])


def test_pretrained_clip_vision_by_local_path(tmp_path, tiny_tokenizer):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    clip_dir = tmp_path / "tiny-clip"
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                            num_attention_heads=2, patch_size=32, image_size=64))
    clip.save_pretrained(clip_dir)
    base = get_preset("tiny")
    cfg = dataclasses.replace(base, vision=VisionConfig(kind="clip", name=str(clip_dir)))
    bundle = create(cfg, tokenizer=tiny_tokenizer, pretrained=True)
    assert torch.equal(bundle.model.vision.net.state_dict()["embeddings.patch_embedding.weight"],
                       clip.state_dict()["embeddings.patch_embedding.weight"])
    mem = bundle.model.encode(torch.randn(1, 3, 128, 128))  # 128 px at patch 32: interpolated positions
    assert mem.shape[1] == 16
