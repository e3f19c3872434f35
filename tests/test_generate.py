import html5lib
import pytest
import torch

from i2h.generate import Predictor, _LoopStop, find_loop, find_text_loop, repair_html
from i2h.images import ImageError


def _parses(doc: str) -> bool:
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    parser.parse(doc)
    return True


def test_find_loop_cuts_a_long_tail_keeping_one_copy():
    head = list(range(100, 140))
    unit = [5, 6, 7, 8, 9, 10]
    seq = head + unit * 50
    cut = find_loop(seq)
    assert cut == len(head) + len(unit)


def test_find_loop_leaves_legitimate_repeats_alone():
    li = [11, 12, 13, 14, 15]
    assert find_loop(list(range(50)) + li * 5 + [99]) is None  # a short list, then more page
    assert find_loop(list(range(50)) + li * 6) is None  # 30 repeated tokens: too short to be a loop
    assert find_loop([]) is None


def test_text_loop_rule():
    text = "<div>" + "<p>spam spam</p>" * 100
    cut = find_text_loop(text)
    assert cut is not None and cut < 200
    assert find_text_loop("<div>" + "abc" * 10 + "</div>") is None


def test_loop_stop_criterion_flags_only_looping_rows():
    stop = _LoopStop(prompt_len=1)
    loop = [2] + [7, 8] * 150
    fine = [2] + list(range(300))
    ids = torch.tensor([loop, fine])
    for _ in range(15):
        stop(ids, None)
    assert stop(ids, None).tolist() == [True, False]


@pytest.mark.parametrize("broken", ["<div><p>unclosed", "plain text", "<table><tr><td>a</td>", "",
                                    "</div></div><b><i>x</b></i>", "<html><body><div class='a"])
def test_repair_always_gives_a_document(broken):
    doc = repair_html(broken)
    assert doc.startswith("<!DOCTYPE html><html>") and doc.endswith("</html>")
    assert _parses(doc)


def test_predictor_marks_truncation_and_cuts_loops(tiny_bundle, screenshot):
    p = Predictor(tiny_bundle)
    kw = dict(p.generation)
    eos, start = kw["eos_token_id"], kw["decoder_start_token_id"]
    whole = p._finish([start, 40, 41, eos, 1, 1], kw, 0.1, loop_guard=True)
    assert not whole.truncated and not whole.loop_cut and whole.tokens == 3
    cut = p._finish([start] + list(range(10, 30)), kw, 0.1, loop_guard=True)
    assert cut.truncated and not cut.loop_cut
    looped = p._finish([start] + list(range(10, 30)) + [50, 51, 52] * 100, kw, 0.1, loop_guard=True)
    assert looped.loop_cut and not looped.truncated
    assert looped.raw == p.tokenizer.decode(list(range(10, 30)) + [50, 51, 52])


def test_predict_batches_beams_and_sampling(tiny_bundle, screenshot):
    p = Predictor(tiny_bundle)
    with torch.no_grad():
        tiny_bundle.model.text.final_logits_bias[0, p.generation["eos_token_id"]] = -30.0
    try:
        greedy = p.predict_full([screenshot, screenshot], max_new_tokens=8, batch_size=2)
        assert greedy[0].raw == greedy[1].raw and greedy[0].truncated
        beams = p.predict_full([screenshot], max_new_tokens=8, num_beams=3)
        assert beams[0].tokens == 8
        s1 = p.predict_full([screenshot], max_new_tokens=8, do_sample=True, seed=3)
        s2 = p.predict_full([screenshot], max_new_tokens=8, do_sample=True, seed=3)
        assert s1[0].raw == s2[0].raw
        assert all(_parses(x.html) for x in greedy + beams + s1)
    finally:
        with torch.no_grad():
            tiny_bundle.model.text.final_logits_bias.zero_()


def test_predict_paths_reports_bad_inputs_in_place(tiny_bundle, screenshot, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    out = Predictor(tiny_bundle).predict_paths([screenshot, bad, tmp_path / "gone.png"], max_new_tokens=4)
    assert not isinstance(out[0], Exception)
    assert isinstance(out[1], ImageError) and "bad.png" in str(out[1])
    assert isinstance(out[2], ImageError) and "gone.png" in str(out[2])


def test_public_api_loads_by_path(tiny_model_dir, screenshot):
    import i2h

    p = i2h.load(tiny_model_dir)
    [html] = p.predict([screenshot], max_new_tokens=4)
    assert html.startswith("<!DOCTYPE html>")


def test_stream_yields_pieces_then_the_same_prediction(tiny_bundle, screenshot):
    p = Predictor(tiny_bundle)
    with torch.no_grad():
        tiny_bundle.model.text.final_logits_bias[0, p.generation["eos_token_id"]] = -30.0
    try:
        items = list(p.stream(screenshot, max_new_tokens=10))
        *pieces, final = items
        assert all(isinstance(x, str) for x in pieces) and final.tokens == 10
        assert "".join(pieces) == final.raw
        assert final.raw == p.predict_full([screenshot], max_new_tokens=10)[0].raw
    finally:
        with torch.no_grad():
            tiny_bundle.model.text.final_logits_bias.zero_()


def test_repair_points_a_garbled_tailwind_link_at_tailwind():
    doc = repair_html('<link href="https://cdn.jsdelivr.net/npm/tailwindcss@2.2.min.min.css" rel="stylesheet"><p>x</p>')
    assert 'href="https://cdn.jsdelivr.net/npm/tailwindcss@2.2.19/dist/tailwind.min.css"' in doc
    assert 'href="other.css"' in repair_html('<link href="other.css" rel="stylesheet">')


def test_max_new_tokens_is_capped_by_the_decoder_positions(tiny_bundle, screenshot):
    p = Predictor(tiny_bundle)
    limit = tiny_bundle.model.text.config.max_position_embeddings
    assert p._gen_kwargs(limit + 500, None, False, 1.0, 1.0, None)["max_new_tokens"] == limit - 1
    assert p._gen_kwargs(None, None, False, 1.0, 1.0, None)["max_new_tokens"] <= limit - 1
