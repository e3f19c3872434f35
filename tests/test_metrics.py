"""Metric formulas against hand-worked values, and each sub-score moving with its own property."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw

from i2h import metrics as M

BLACK, WHITE, RED = (0.0, 0.0, 0.0), (255.0, 255.0, 255.0), (255.0, 0.0, 0.0)


def blk(text, x, y, w=0.2, h=0.05, color=BLACK):
    return M.Block(text, x, y, w, h, color)


# A small page: a heading, three nav links, a paragraph, two identical "Read more" links far apart.
PAGE = [
    blk("Acme Corporation", 0.1, 0.05, 0.4, 0.08),
    blk("Home", 0.6, 0.05, 0.08, 0.03),
    blk("Pricing", 0.7, 0.05, 0.08, 0.03),
    blk("Contact", 0.8, 0.05, 0.08, 0.03),
    blk("We build rockets for small teams and large dreams.", 0.1, 0.2, 0.6, 0.1),
    blk("Read more", 0.1, 0.5, 0.1, 0.03),
    blk("Quarterly results were strong across all divisions.", 0.1, 0.6, 0.6, 0.1),
    blk("Read more", 0.1, 0.9, 0.1, 0.03),
]


def replace(blocks, k, **kw):
    out = list(blocks)
    out[k] = dataclasses.replace(out[k], **kw)
    return out


# ---- the formulas, worked by hand -------------------------------------------------------------------


def test_hand_worked_example():
    ref = [blk("Hello world", 0.1, 0.1, 0.2, 0.1), blk("Contact us", 0.5, 0.5, 0.2, 0.1),
           blk("Footer text", 0.1, 0.9, 0.1, 0.05)]
    pred = [blk("Hello world", 0.2, 0.1, 0.2, 0.1),  # moved right by 0.1
            blk("Contact", 0.5, 0.5, 0.2, 0.1, color=WHITE)]  # fewer words, white instead of black
    s = M.block_scores(pred, ref)
    # Text: SequenceMatcher("Contact", "Contact us") = 2*7 / (7+10) = 14/17; mean with the exact 1.0.
    assert s["text"] == pytest.approx((1 + 14 / 17) / 2)
    # Position: centres differ by (0.1, 0) and (0, 0): mean(1 - 0.1, 1 - 0) = 0.95.
    assert s["position"] == pytest.approx(0.95)
    # Color: black/black is 1; black/white is CIEDE2000 = 100 (L* 0 vs 100, S_L = 1 at mean L* 50) -> 0.
    assert s["color"] == pytest.approx(0.5, abs=1e-6)
    # Block-Match: matched areas 4 x 0.02 = 0.08, the footer (0.005) unmatched: 0.08 / 0.085.
    assert s["block_match"] == pytest.approx(0.08 / 0.085)


def test_text_similarity_is_difflib_ratio():
    assert M.text_similarity("Contact", "Contact us") == pytest.approx(14 / 17)
    assert M.text_similarity("abc", "xyz") == 0.0


def test_color_similarity_ciede2000():
    assert M.color_similarity((0, 0, 0), (0, 0, 0)) == 1.0
    assert M.color_similarity((0, 0, 0), (255, 255, 255)) == pytest.approx(0.0, abs=1e-6)
    # Pure-lightness difference at mean L* = 50: S_L = 1, so dE00 = dL* = 10 -> 0.9 (greys of L* 45 and 55).
    lab = np.array([[45.0, 0, 0], [55.0, 0, 0]])
    from skimage.color import lab2rgb

    rgb = lab2rgb(lab.reshape(2, 1, 3)).reshape(2, 3) * 255
    assert M.color_similarity(rgb[0], rgb[1]) == pytest.approx(0.9, abs=2e-3)


def test_position_is_max_of_axis_shifts():
    a, b = blk("x", 0.1, 0.1), blk("x", 0.4, 0.2)
    assert M.position_similarity(a, b) == pytest.approx(1 - 0.3)


def test_no_blocks_or_no_matches_score_zero():
    zeros = {k: 0.0 for k in M.BLOCK_KEYS}
    assert M.block_scores([], PAGE) == zeros
    assert M.block_scores(PAGE, []) == zeros
    # Similarity below the 0.5 cut on every pair: nothing matches.
    assert M.block_scores([blk("zzzz qqqq", 0.1, 0.1)], [blk("Acme", 0.1, 0.1)]) == zeros


def test_context_bonus_matches_the_literal_definition():
    rng = np.random.default_rng(0)
    cost = -rng.random((7, 9))

    def literal(c, bonus=0.1, w=1):  # Design2Code's loop, written out
        out = c.copy()
        n, m = c.shape
        for i in range(n):
            for j in range(m):
                if c[i, j] >= -0.5:
                    continue
                near = c[max(0, i - w):i + w + 1, max(0, j - w):j + w + 1].ravel()
                near = np.sort(near)[::-1]
                near = np.delete(near, np.where(near == c[i, j])[0][0])
                out[i, j] += bonus * near[-2 * w:].sum()
        return out

    np.testing.assert_allclose(M.context_adjusted_cost(cost), literal(cost))


def test_adjacent_blocks_are_merged_when_that_helps():
    ref = [blk("Welcome to the Acme store", 0.1, 0.1, 0.5, 0.05)]
    pred = [blk("Welcome to the", 0.1, 0.1, 0.3, 0.05), blk("Acme store", 0.4, 0.1, 0.2, 0.05)]
    A, B, matches = M.match_blocks(pred, ref)
    assert [b.text for b in A] == ["Welcome to the Acme store"]
    assert matches == [(0, 0, 1.0)]
    assert M.block_scores(pred, ref)["block_match"] == pytest.approx(1.0)


def test_identical_boxes_merge_and_boxes_normalise():
    Box = dataclasses.make_dataclass("Box", ["text", "x", "y", "width", "height", "color"])
    boxes = [Box(" Hello ", 128, 72, 256, 36, (0, 0, 0)), Box("world", 128, 72, 256, 36, (255, 255, 255)),
             Box("   ", 0, 0, 10, 10, (0, 0, 0)),  # blank text: not a block
             Box("gone", 0, 900, 10, 10, (0, 0, 0))]  # below the page: not a block
    [b] = M.blocks_from_boxes(boxes, 1280, 720)
    assert (b.text, b.color) == ("Hello world", (127.5, 127.5, 127.5))
    assert (b.x, b.y, b.w, b.h) == pytest.approx((0.1, 0.1, 0.2, 0.05))


# ---- identical pages, and each sub-score moving alone ------------------------------------------------


def test_identical_pages_score_one_even_with_repeated_texts():
    assert M.block_scores(PAGE, list(PAGE)) == {k: 1.0 for k in M.BLOCK_KEYS}


def test_moving_a_block_lowers_position_only():
    s = M.block_scores(replace(PAGE, 4, x=0.3, y=0.35), PAGE)
    assert s["position"] < 0.99
    assert s["text"] == 1.0 and s["color"] == 1.0 and s["block_match"] == pytest.approx(1.0)


def test_recolouring_text_lowers_color_only():
    s = M.block_scores(replace(PAGE, 0, color=RED), PAGE)
    assert s["color"] < 0.95
    assert s["text"] == 1.0 and s["position"] == 1.0 and s["block_match"] == pytest.approx(1.0)


def test_changing_words_lowers_text_only():
    s = M.block_scores(replace(PAGE, 4, text="We build boats for small teams and big dreams."), PAGE)
    assert s["text"] < 0.99
    assert s["position"] == 1.0 and s["color"] == 1.0 and s["block_match"] == pytest.approx(1.0)


def test_deleting_a_block_lowers_block_match_only():
    s = M.block_scores(PAGE[:6] + PAGE[7:], PAGE)  # the paragraph at y=0.6 is gone
    assert s["block_match"] < 0.9
    assert s["text"] == 1.0 and s["position"] == 1.0 and s["color"] == 1.0


# ---- whole-page similarity ---------------------------------------------------------------------------


def _page(boxes, size=(320, 400)):
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    for x, y, w, h, c in boxes:
        d.rectangle([x, y, x + w, y + h], fill=c)
    return img


def test_visual_similarity():
    a = _page([(20, 20, 200, 40, "navy"), (20, 100, 280, 200, "gray")])
    moved = _page([(60, 60, 200, 40, "navy"), (20, 100, 280, 200, "gray")])
    assert M.visual_similarity(a, a) == pytest.approx(1.0)
    assert M.visual_similarity(a, moved) < 0.99
    assert M.visual_similarity(a, Image.new("RGB", (320, 400), "white")) < M.visual_similarity(a, moved)
    # Different heights are padded, not stretched: a prefix of the page stays close.
    assert 0.0 < M.visual_similarity(a, a.crop((0, 0, 320, 300))) < 1.0


def test_difference_map_marks_the_changed_region():
    a = _page([(20, 20, 100, 40, "black")])
    b = _page([])
    diff = np.asarray(M.difference_map(a, b))
    assert diff.shape == (400, 320, 3)
    assert diff[40, 60].sum() < diff[300, 300].sum() == 3 * 255


def test_clip_with_a_tiny_random_model(tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    cfg = CLIPConfig(
        text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=99, max_position_embeddings=16),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8,
    )
    CLIPModel(cfg).save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    scorer = M.ClipScorer(str(tmp_path))
    a = _page([(20, 20, 200, 40, "navy")])
    b = _page([(20, 200, 280, 150, "orange")])
    assert scorer.similarity(a, a) == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= scorer.similarity(a, b) <= 1.0
    with pytest.raises(ValueError, match="cannot load CLIP"):
        M.ClipScorer(str(tmp_path / "missing"))


# ---- code metrics --------------------------------------------------------------------------------------

REF_HTML = "<html><body><ul><li>One</li><li>Two</li></ul><p>Hi <b>there</b></p></body></html>"


def test_tokens_and_bleu():
    assert M.html_tokens('<p class="a">Hi!</p>') == ["<p", "class", "=", '"', "a", '"', ">", "Hi", "!", "</p", ">"]
    assert M.bleu(REF_HTML, REF_HTML) == pytest.approx(1.0)
    assert M.bleu("", REF_HTML) == 0.0
    assert 0.0 < M.bleu(REF_HTML.replace("Two", "Three"), REF_HTML) < 1.0


def test_tree_bleu_by_hand():
    # Reference 1-height subtrees: html(head, body), body(ul, p), ul(li, li), p(b) -> 4.
    # The prediction has html(head, body), body(ul, p), ul(li) and p(b): 3 of the 4 are found.
    pred = "<html><body><ul><li>One</li></ul><p>Hi <b>there</b></p></body></html>"
    assert M.tree_bleu(pred, REF_HTML) == pytest.approx(3 / 4)
    assert M.tree_bleu(REF_HTML, REF_HTML) == 1.0


def test_valid_html_and_length_ratio():
    assert M.is_valid_html(REF_HTML)
    assert not M.is_valid_html("<html><body><p>unclosed <b>bold</p></i></body></html>")
    assert not M.is_valid_html("")
    scores = M.code_scores(REF_HTML.replace("<li>Two</li>", ""), REF_HTML)
    assert scores["length_ratio"] == pytest.approx((len(M.html_tokens(REF_HTML)) - 5) / len(M.html_tokens(REF_HTML)))


def test_repetition_loop():
    page = "<html><body>" + "".join(f"<li>item {i}</li>" for i in range(60)) + "</body></html>"
    assert not M.has_repetition_loop(page)
    looped = "<html><body><ul>" + "<li>item</li><li>more</li>" * 40
    assert M.has_repetition_loop(looped)
    assert M.has_repetition_loop(looped + "</ul></body></html>")  # repair's closing tags are ignored
    assert M.code_scores(looped, None)["repetition_loop"] == 1.0


def test_mean_scores_skips_missing():
    means = M.mean_scores([{"text": 1.0, "clip": None}, {"text": 0.5, "clip": None}, {"text": None}])
    assert means == {"text": 0.75, "clip": None}


def test_overall_is_the_mean_of_five():
    s = {"block_match": 1.0, "text": 1.0, "position": 0.5, "color": 0.5, "visual": 0.0}
    assert M.overall(s) == pytest.approx(0.6)
    assert M.overall({**s, "clip": 1.0}) == pytest.approx(0.8)
