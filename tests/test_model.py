import dataclasses

import pytest
import torch

from i2h.checkpoint import create
from i2h.config import get_preset


def _batch(bundle, n=2, length=12):
    cfg = bundle.model.config
    pixels = torch.randn(n, 3, cfg.image.height, cfg.image.width)
    labels = torch.randint(4, cfg.vocab_size, (n, length))
    labels[0, -3:] = -100  # padding is masked out of the loss
    return pixels, labels


def _forward_backward_generate(bundle, n=2):
    model = bundle.model.train()
    pixels, labels = _batch(bundle, n=n)
    out = model(pixels, labels=labels)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.projection.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    seq = model.generate(pixels[:1], max_new_tokens=4, **{k: v for k, v in bundle.generation.items() if k != "max_new_tokens"})
    assert seq.shape[0] == 1 and seq.shape[1] <= 5


@pytest.mark.parametrize("through", [True, False])
def test_tiny_both_wirings(tiny_tokenizer, through):
    cfg = dataclasses.replace(get_preset("tiny"), through_text_encoder=through)
    bundle = create(cfg, tokenizer=tiny_tokenizer)
    _forward_backward_generate(bundle)
    counts = bundle.model.parameter_counts()
    assert (counts["text_encoder"] > 0) == through


def test_visual_tokens_have_the_right_shape(tiny_bundle):
    model = tiny_bundle.model
    pixels = torch.randn(2, 3, 128, 128)
    mem = model.encode(pixels)
    assert mem.shape == (2, (128 // 32) ** 2, model.config.d_model)  # stride-32 CNN: a 4 x 4 grid


def test_position_signal_distinguishes_rows_and_columns():
    from i2h.model import sincos_2d

    pe = sincos_2d(3, 4, 16)
    assert pe.shape == (12, 16)
    assert len({tuple(r.round(decimals=4).tolist()) for r in pe}) == 12  # every cell differs


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["mnv3-distilbart", "clip-t5", "effnet-distilbart", "vittiny-distilbart", "small"])
def test_every_preset_builds_and_trains_a_step(preset, tiny_tokenizer):
    cfg = get_preset(preset)
    # Half the input size keeps CI time down; the architecture is the preset's.
    cfg = cfg.replace(**{"image.width": cfg.image.width // 2, "image.height": cfg.image.height // 2})
    # The pretrained-tokenizer presets need their Hub tokenizer; the architecture does not, so the
    # test gives them ours (the embedding table is sized to it).
    bundle = create(cfg, tokenizer=tiny_tokenizer)
    _forward_backward_generate(bundle, n=1)


def test_mnv3_distilbart_sizes():
    from i2h.cli_model import model_info

    p = model_info("mnv3-distilbart")["parameters"]
    assert 1.4e6 < p["vision_encoder"] < 1.6e6  # MobileNetV3-Small without its classifier
    text = p["embeddings"] + p["text_encoder"] + p["decoder"]
    assert 225e6 < text < 235e6  # DistilBART 6-6


@pytest.mark.parametrize("preset_family", ["bart", "t5"])
def test_masked_logits_equal_the_full_forward(tiny_tokenizer, preset_family):
    from i2h.config import T5_BASE

    cfg = get_preset("tiny")
    if preset_family == "t5":
        t5 = dict(T5_BASE, d_model=64, d_kv=16, d_ff=128, num_layers=1, num_decoder_layers=1, num_heads=2)
        cfg = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, family="t5", arch=t5))
    bundle = create(cfg, tokenizer=tiny_tokenizer)
    model = bundle.model.eval()
    pixels, labels = _batch(bundle)
    dec = torch.randint(4, bundle.model.config.vocab_size, labels.shape)
    full = model(pixels, decoder_input_ids=dec).logits
    mask = labels != -100
    part = model(pixels, decoder_input_ids=dec, logits_mask=mask).logits
    assert torch.allclose(full[mask], part, atol=1e-5)
