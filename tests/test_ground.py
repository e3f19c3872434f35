"""Text grounding: OCR text lands in the right predicted elements; leftovers on both sides are handled."""
from __future__ import annotations

import shutil

import html5lib
import pytest
from PIL import Image

from i2h import ground as G
from i2h.ocr import OcrLine, OcrWord
from i2h.ocr import _split_line  # the same proportional word split rapidocr's lines get

TRUTH = """<!DOCTYPE html><html><body style="margin:0;font-family:sans-serif">
<div id="title" style="position:absolute;left:40px;top:30px;font-size:32px">Welcome home</div>
<div id="lead" style="position:absolute;left:40px;top:100px;font-size:18px">We build fast tools</div>
<a id="nav" style="position:absolute;left:900px;top:30px;font-size:18px">Pricing</a>
<div style="position:absolute;left:40px;top:300px;font-size:18px">Extra line here</div>
</body></html>"""

# Layout right, words wrong (what a model that cannot read makes), one invented block, one missing line.
PRED = """<!DOCTYPE html><html><head><title>Keep me</title><style>p{color:red}</style></head>
<body style="margin:0;font-family:sans-serif">
<div id="title" style="position:absolute;left:40px;top:30px;font-size:32px">Lorem ipsum</div>
<div id="lead" style="position:absolute;left:40px;top:100px;font-size:18px">Dolor sit amet adipiscing</div>
<a id="nav" style="position:absolute;left:900px;top:30px;font-size:18px">Blog</a>
<p id="ghost" style="position:absolute;left:40px;top:500px">Invented footer text</p>
</body></html>"""


class BoxOcr:
    """A perfect OCR engine for tests: the truth render's text boxes as lines (no Tesseract needed)."""

    name = "truth"

    def __init__(self, render):
        self.lines = [_split_line(b.text, b.x, b.y + 3, b.width, b.height - 6, 0.99) for b in render.boxes]

    def read(self, image):
        return list(self.lines)


def by_id(html: str) -> dict[str, str]:
    root = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)
    return {el.get("id"): "".join(el.itertext()).strip() for el in root.iter() if el.get("id")}


def added_divs(html: str) -> list:
    root = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)
    return [el for el in root.iter() if el.get("data-i2h-ocr") is not None]


@pytest.fixture(scope="module")
def renderer():
    from i2h.render import Renderer

    with Renderer(pool_size=1, timeout_s=10) as r:
        yield r


@pytest.fixture(scope="module")
def truth(renderer):
    res = renderer.render(TRUTH)
    assert res.error is None
    return res


@pytest.mark.browser
def test_right_words_go_into_the_right_elements(renderer, truth):
    g = G.ground_html(PRED, truth.image, renderer, BoxOcr(truth))
    assert g.error is None
    text = by_id(g.html)
    assert text["title"] == "Welcome home"
    assert text["lead"] == "We build fast tools"
    assert text["nav"] == "Pricing"
    assert text["ghost"] == ""  # blank in the screenshot: the invented text is removed
    (extra,) = added_divs(g.html)  # the line the model made no room for
    assert extra.text == "Extra line here"
    style = extra.get("style")
    top = int(style.split("top:")[1].split("px")[0])
    assert "position:absolute" in style and 280 <= top <= 320  # where the screenshot shows it (y = 300)
    assert (g.replaced, g.added, g.removed) == (3, 1, 1)
    assert "<title>Keep me</title>" in g.html and "p{color:red}" in g.html  # head untouched
    assert g.html.startswith("<!DOCTYPE html>") and g.source_html == PRED
    # The grounded page renders with the screenshot's text where the screenshot has it.
    got = {b.text for b in renderer.render(g.html).boxes}
    assert {"Welcome home", "We build fast tools", "Pricing", "Extra line here"} <= got


@pytest.mark.browser
def test_text_below_a_viewport_screenshot_is_kept(renderer, truth):
    # A 1280x720 screenshot says nothing about y = 900: the prediction's text there stays.
    pred = PRED.replace("top:500px", "top:900px")
    g = G.ground_html(pred, truth.image, renderer, BoxOcr(truth))
    assert by_id(g.html)["ghost"] == "Invented footer text" and g.kept == 1


@pytest.mark.browser
def test_screenshot_without_text(renderer):
    blank = Image.new("RGB", (1280, 720), "white")
    g = G.ground_html(PRED, blank, renderer, lines=[])
    assert g.error is None and g.replaced == 0 and g.added == 0 and g.removed == 4
    assert all(v == "" for v in by_id(g.html).values())


@pytest.mark.browser
def test_prediction_without_text_nodes(renderer, truth):
    pred = '<!DOCTYPE html><html><body><div style="height:300px;background:#eee"></div></body></html>'
    g = G.ground_html(pred, truth.image, renderer, BoxOcr(truth))
    assert g.error is None and g.replaced == 0 and g.removed == 0
    assert sorted(d.text for d in added_divs(g.html)) == ["Extra line here", "Pricing", "We build fast tools", "Welcome home"]
    # Nothing on either side: the page comes back as it was.
    g = G.ground_html(pred, Image.new("RGB", (1280, 720), "white"), renderer, lines=[])
    assert g.error is None and (g.replaced, g.added, g.removed) == (0, 0, 0) and "background:#eee" in g.html


@pytest.mark.browser
def test_screenshot_of_another_width_is_scaled(renderer, truth):
    half = truth.image.resize((640, 360))
    lines = [OcrLine(ln.text, ln.x / 2, ln.y / 2, ln.width / 2, ln.height / 2, ln.confidence,
                     tuple(OcrWord(w.text, w.x / 2, w.y / 2, w.width / 2, w.height / 2, w.confidence) for w in ln.words))
             for ln in BoxOcr(truth).lines]
    g = G.ground_html(PRED, half, renderer, lines=lines)
    assert by_id(g.html)["lead"] == "We build fast tools"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")
def test_with_real_tesseract(renderer, truth):
    from i2h.ocr import TesseractEngine

    g = G.ground_html(PRED, truth.image, renderer, TesseractEngine())
    text = by_id(g.html)
    assert text["title"] == "Welcome home" and text["lead"] == "We build fast tools" and text["nav"] == "Pricing"


class Boom:
    name = "boom"

    def read(self, image):
        raise RuntimeError("engine crashed")


class NoRender:
    width = 1280

    def render(self, html):
        from i2h.render import RenderResult

        return RenderResult(Image.new("RGB", (1280, 720), "white"), [], 1280, 720, error="timeout")


def test_failures_return_the_prediction_with_a_reason():
    shot = Image.new("RGB", (1280, 720), "white")
    g = G.ground_html(PRED, shot, NoRender(), Boom())
    assert g.html == PRED and "engine crashed" in g.error
    g = G.ground_html(PRED, shot, NoRender(), lines=[])
    assert g.html == PRED and "did not render: timeout" in g.error


def test_make_grounder_off_or_without_engine(monkeypatch):
    assert G.make_grounder(enabled=False) is None
    from i2h import ocr

    monkeypatch.setattr(ocr, "available_engines", lambda: [])
    monkeypatch.delenv(ocr.ENV_ENGINE, raising=False)
    said = []
    assert G.make_grounder(warn=said.append) is None
    assert "text grounding off" in said[0] and "tesseract-ocr" in said[0]


def test_predictor_hook_applies_grounding_and_keeps_the_model_page():
    from i2h.generate import Prediction, _apply_grounding

    preds = [Prediction("<p>a</p>", 3, False, False, 0.5), Prediction("<p>b</p>", 3, False, False, 0.5)]

    def ground(html, img):
        if html == "<p>b</p>":
            return G.GroundResult(html, 0, 0, 0, 0.1, error="render failed", source_html=html)
        return G.GroundResult("<p>A!</p>", 1, 0, 0, 0.25, source_html=html)

    _apply_grounding(preds, [None, None], ground)
    assert preds[0].html == "<p>A!</p>" and preds[0].grounding.source_html == "<p>a</p>" and preds[0].seconds == 0.75
    assert preds[1].html == "<p>b</p>" and preds[1].grounding.error == "render failed"  # one bad page: kept as is


def test_overlap_share_prefers_the_box_holding_the_word():
    import numpy as np

    words = np.array([[10.0, 10, 20, 10], [100, 10, 20, 10]])
    boxes = np.array([[0.0, 0, 50, 30], [90, 0, 50, 30]])
    share = G._overlap_share(words, boxes, np.zeros(2))
    assert share[0].tolist() == [1.0, 0.0] and share[1].tolist() == [0.0, 1.0]


def test_text_color_reads_the_glyphs_not_the_ground():
    import numpy as np

    rgb = np.full((20, 40, 3), 255, np.uint8)
    rgb[8:12, 5:35] = (200, 0, 0)
    assert G.text_color(rgb, (0, 0, 40, 20)) == (200, 0, 0)


class SlowCountingOcr(BoxOcr):
    """BoxOcr that takes a while and counts its reads, in whichever thread calls it."""

    def __init__(self, render, delay=0.3):
        super().__init__(render)
        self.calls, self.delay = 0, delay

    def read(self, image):
        import time

        self.calls += 1
        time.sleep(self.delay)
        return super().read(image)


def test_prefetch_reads_once_in_the_background_and_grounds_the_same(renderer, truth):
    import time

    plain = G.TextGrounder(BoxOcr(truth), renderer=renderer)(PRED, truth.image)
    engine = SlowCountingOcr(truth)
    with G.TextGrounder(engine, renderer=renderer) as grounder:
        grounder.prefetch([truth.image])
        time.sleep(engine.delay + 0.2)  # the "decoding": OCR finishes meanwhile
        t0 = time.perf_counter()
        g = grounder(PRED, truth.image)
        waited = time.perf_counter() - t0
        assert engine.calls == 1 and g.html == plain.html and g.error is None
        grounder(PRED, truth.image)  # cached: no second read
        assert engine.calls == 1
        grounder.prefetch([truth.image])  # already known: nothing started
        assert engine.calls == 1
    assert g.seconds == pytest.approx(waited, abs=0.05)  # a result's seconds cover its OCR wait
    # a prefetch that fails is read again when the page is grounded, and then reported if it fails again
    with G.TextGrounder(Boom(), renderer=renderer) as grounder:
        grounder.prefetch([truth.image])
        g = grounder(PRED, truth.image)
        assert g.html == PRED and "engine crashed" in g.error
