"""The OCR interface: Tesseract's TSV parsed into lines and words, engine choice, and real reads when installed."""
from __future__ import annotations

import shutil

import pytest

from i2h import ocr
from i2h.ocr import OcrUnavailable, OcrWord, TesseractEngine, get_engine, line_from_words, parse_tesseract_tsv

TSV = "\t".join("level page_num block_num par_num line_num word_num left top width height conf text".split()) + "\n" + "\n".join(
    "\t".join(map(str, row)) for row in [
        (1, 1, 0, 0, 0, 0, 0, 0, 200, 100, -1, ""),
        (4, 1, 1, 1, 1, 0, 10, 20, 90, 12, -1, ""),
        (5, 1, 1, 1, 1, 1, 10, 20, 40, 12, 96.5, "Hello"),
        (5, 1, 1, 1, 1, 2, 60, 21, 40, 11, 91.0, 'wor"ld'),  # a quote must not open a CSV field
        (5, 1, 1, 1, 1, 3, 110, 21, 5, 11, 95.0, " "),  # blank words are dropped
        (5, 1, 2, 1, 1, 1, 10, 60, 30, 10, 50.0, "Next"),
    ])


def test_tsv_becomes_lines_with_words_boxes_and_confidences():
    lines = parse_tesseract_tsv(TSV, scale=0.5)
    assert [ln.text for ln in lines] == ['Hello wor"ld', "Next"]
    first = lines[0]
    assert [w.text for w in first.words] == ["Hello", 'wor"ld']
    assert (first.x, first.y, first.width, first.height) == (5.0, 10.0, 45.0, 6.0)  # union, scaled by 0.5
    assert first.confidence == pytest.approx((0.965 + 0.91) / 2)


def test_line_from_words_orders_left_to_right():
    ln = line_from_words([OcrWord("b", 50, 0, 10, 10, 1.0), OcrWord("a", 0, 2, 10, 10, 0.5)])
    assert ln.text == "a b" and (ln.x, ln.y, ln.width, ln.height) == (0, 0, 60, 12)


def test_unknown_or_missing_engine_says_what_to_do(monkeypatch):
    with pytest.raises(ValueError, match="choose from"):
        get_engine("abbyy")
    with pytest.raises(OcrUnavailable, match="apt-get install tesseract-ocr"):
        TesseractEngine(executable="/nonexistent/tesseract")
    monkeypatch.setattr(ocr, "available_engines", lambda: [])
    with pytest.raises(OcrUnavailable, match="--no-ground-text"):
        get_engine("auto")


def test_setting_picks_the_engine(monkeypatch):
    monkeypatch.setenv(ocr.ENV_ENGINE, "abbyy")
    with pytest.raises(ValueError, match="abbyy"):
        get_engine()


@pytest.fixture(scope="module")
def page():
    from i2h.render import render_html

    html = ("<html><body style='font-family:sans-serif;margin:40px'><h1>Quarterly report</h1>"
            "<p style='font-size:18px'>Revenue grew twelve percent in spring</p>"
            "<div style='background:#1e3a8a;color:white;padding:20px;width:300px'>Contact sales</div></body></html>")
    return render_html(html, pool_size=1)


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")
def test_tesseract_reads_a_rendered_page(page):
    lines = TesseractEngine().read(page.image)
    words = {w.text.lower().strip(".,") for ln in lines for w in ln.words}
    # (The white-on-blue box is not asserted: sparse-text mode misses some light-on-dark text.)
    assert {"quarterly", "report", "revenue", "twelve", "percent"} <= words
    h1 = next(ln for ln in lines if "Quarterly" in ln.text)
    box = next(b for b in page.boxes if b.text == "Quarterly report")
    assert box.y - 5 <= h1.y + h1.height / 2 <= box.y + box.height + 5  # boxes in the image's own frame


@pytest.mark.browser
@pytest.mark.slow
def test_rapidocr_reads_a_rendered_page(page):
    pytest.importorskip("rapidocr_onnxruntime")
    lines = ocr.RapidOcrEngine().read(page.image)
    text = " ".join(ln.text for ln in lines).lower().replace(" ", "")
    assert "quarterlyreport" in text and "contactsales" in text  # its models drop English spaces
