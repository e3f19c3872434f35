"""The lean greedy decoder gives Hugging Face generate's tokens exactly; the Predictor uses it."""
import pytest
import torch

from i2h.fast import GreedyDecoder, greedy_generate, supports
from i2h.generate import Predictor, _LoopStop


@pytest.fixture(scope="module")
def model(tiny_bundle):
    m = tiny_bundle.model.eval()
    m.text.generation_config.forced_eos_token_id = None
    return m


@pytest.fixture(scope="module")
def memory(model):
    torch.manual_seed(1)
    with torch.inference_mode():
        return model.encode(torch.randn(3, 3, 128, 128))


@pytest.mark.parametrize("kw", [
    dict(max_new_tokens=40, min_new_tokens=40),  # forced length: every step compared
    dict(max_new_tokens=30),  # natural EOS / padding of finished rows
    dict(max_new_tokens=12, min_length=5, forced_bos_token_id=7, forced_eos_token_id=2),
])
@pytest.mark.parametrize("batch", [1, 3])
def test_same_tokens_as_hf_generate(model, memory, kw, batch):
    mem = memory[:batch]
    ref = model.generate(None, memory=mem, do_sample=False, num_beams=1, **kw)
    assert torch.equal(greedy_generate(model, memory=mem, **kw), ref)


def test_same_tokens_with_two_threads_and_a_stopping_criterion(model, memory):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        kw = dict(max_new_tokens=40, min_new_tokens=40)
        ref = model.generate(None, memory=memory, stopping_criteria=[_LoopStop(1)], **kw)
        got = greedy_generate(model, memory=memory, stopping_criteria=[_LoopStop(1)], **kw)
        assert torch.equal(got, ref)
    finally:
        torch.set_num_threads(threads)


def test_unsupported_settings_are_named(model):
    assert supports(model, max_new_tokens=5) is None
    assert "num_beams" in supports(model, num_beams=2)
    assert "do_sample" in supports(model, do_sample=True)
    assert "repetition_penalty" in supports(model, repetition_penalty=1.2)


def test_length_beyond_positions_is_a_clear_error(model, memory):
    with pytest.raises(ValueError, match="positions"):
        GreedyDecoder(model).generate(memory=memory[:1], max_new_tokens=5000)


def test_predictor_backends_agree(tiny_bundle, screenshot):
    fast = Predictor(tiny_bundle, backend="auto").predict_full([screenshot], max_new_tokens=24)[0]
    hf = Predictor(tiny_bundle, backend="hf").predict_full([screenshot], max_new_tokens=24)[0]
    assert fast.raw == hf.raw and fast.tokens == hf.tokens
    with pytest.raises(ValueError, match="backend"):
        Predictor(tiny_bundle, backend="tensorrt")
