"""Evaluation: data loading, baselines, scores on rendered hand-made pages, and the eval run's outputs."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from i2h import evaluate as E
from i2h import metrics as M


def _png(color="white", size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


# ---- data and baselines (no browser) ------------------------------------------------------------------


def test_iter_pairs_folder(tmp_path):
    for stem, color in (("a", "red"), ("b", "blue")):
        (tmp_path / f"{stem}.png").write_bytes(_png(color))
        (tmp_path / f"{stem}.html").write_text(f"<p>{stem}</p>")
    (tmp_path / "rick.jpg").write_bytes(_png("green"))  # an asset the pages use, not a page
    pairs = E.load_pairs(tmp_path)
    assert [(p.id, p.html) for p in pairs] == [("a", "<p>a</p>"), ("b", "<p>b</p>")]
    assert len(E.load_pairs(tmp_path, n=1)) == 1
    with pytest.raises(E.DataError, match="no such folder"):
        E.load_pairs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(E.DataError, match="no screenshots"):
        E.load_pairs(tmp_path / "empty")


def test_iter_pairs_parquet_shards(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"image": [{"bytes": _png("red"), "path": None}, {"bytes": _png("blue"), "path": None}],
                      "text": ["<p>one</p>", "<p>two</p>"], "seed": [0, 0], "index": [0, 1]})
    pq.write_table(table, tmp_path / "train-00000.parquet")
    pairs = E.load_pairs(tmp_path)
    assert [p.html for p in pairs] == ["<p>one</p>", "<p>two</p>"]
    assert E._load_image(pairs[1]).getpixel((0, 0)) == (0, 0, 255)


def test_nearest_baseline_picks_the_closest_and_leaves_the_input_out():
    train = [E.Pair("r", _png("red"), "<p>red</p>"), E.Pair("dr", _png((200, 0, 0)), "<p>dark red</p>"),
             E.Pair("b", _png("blue"), "<p>blue</p>")]
    nearest = E.NearestBaseline(train)
    red = Image.new("RGB", (64, 48), "red")
    assert nearest.predict([red]) == ["<p>dark red</p>"]  # the identical page itself is skipped
    assert nearest.predict([Image.new("RGB", (64, 48), (0, 0, 230))]) == ["<p>blue</p>"]
    assert E.BlankBaseline().predict([red, red]) == [E.BLANK_HTML] * 2


def test_one_failing_page_does_not_stop_a_batch():
    class Flaky:
        def predict(self, images):
            if any(img.getpixel((0, 0)) == (255, 0, 0) for img in images):
                raise RuntimeError("cannot read red pages")
            return ["<p>ok</p>" for _ in images]

    imgs = [Image.new("RGB", (8, 8), c) for c in ("blue", "red", "green")]
    htmls, errors, _ = E._predict(Flaky(), imgs, ["b", "r", "g"])
    assert htmls == ["<p>ok</p>", E.BLANK_HTML, "<p>ok</p>"]
    assert errors[0] is None and "cannot read red pages" in errors[1]


def test_report_escapes_page_content():
    page = {"id": "<script>x</script>", "overall": 0.5, "text": 0.5, "render_error": None, "predict_error": None}
    result = {"data": "d", "n_pages": 1, "renders": 1, "seconds": 1.0, "notes": [], "skipped_pages": [],
              "pictures_for": ["blank"],
              "systems": {"blank": {"mean": {"overall": 0.5, "text": 0.5}, "pages": [page],
                                    "render_failures": [], "predict_failures": []}}}
    report = E.render_report(result)
    assert "<script>x" not in report and "&lt;script&gt;x" in report


# ---- rendered hand-made pages ---------------------------------------------------------------------------

PAGE = """<!DOCTYPE html><html><head><style>
body {{ margin: 0; font: 20px sans-serif; }} div {{ position: absolute; }}
</style></head><body style="height: 700px">
<div style="left: 40px; top: 30px; color: {title_color}">{title}</div>
<div style="left: 40px; top: {para_top}px; width: 600px">We build rockets for small teams and large dreams.</div>
{extra}
<div style="left: 40px; top: 600px">Contact us at the front desk</div>
</body></html>"""
BASE = dict(title="Acme Corporation", title_color="#111111", para_top=120,
            extra='<div style="left: 700px; top: 300px">Quarterly results were strong</div>')


def page(**kw):
    return PAGE.format(**{**BASE, **kw})


@pytest.fixture(scope="module")
def renderer():
    from i2h.render import Renderer

    with Renderer(pool_size=1, timeout_s=10) as r:
        yield r


def _scores(renderer, pred_html, ref_html=None):
    ref_html = ref_html or page()
    return E.score_html(renderer, [pred_html], [ref_html])[0]


@pytest.mark.browser
def test_rendered_pages_move_the_right_score(renderer):
    same = _scores(renderer, page())
    assert {k: same[k] for k in M.BLOCK_KEYS} == {k: 1.0 for k in M.BLOCK_KEYS}
    assert same["visual"] == pytest.approx(1.0) and same["overall"] == pytest.approx(1.0)

    blank = _scores(renderer, E.BLANK_HTML)
    assert all(blank[k] == 0.0 for k in M.BLOCK_KEYS)

    moved = _scores(renderer, page(para_top=400))
    assert moved["position"] < 0.95 and moved["text"] == 1.0 and moved["color"] == 1.0

    recoloured = _scores(renderer, page(title_color="#e11d48"))
    assert recoloured["color"] < 0.95 and recoloured["text"] == 1.0 and recoloured["position"] == 1.0

    # Words added: similarity 2*16/36 = 0.89, still above the 0.5 cut; the longer box shifts its centre a little.
    reworded = _scores(renderer, page(title="Acme Corporation Ltd"))
    assert reworded["text"] < 0.99 and reworded["position"] > 0.97 and reworded["color"] == 1.0
    # Words replaced outright fall below the cut: the block stops matching, so Block-Match falls instead.
    replaced = _scores(renderer, page(title="Garden Centre"))
    assert replaced["block_match"] < 0.99 and replaced["text"] == 1.0

    deleted = _scores(renderer, page(extra=""))
    assert deleted["block_match"] < 0.95 and deleted["text"] == 1.0 and deleted["position"] == 1.0


@pytest.mark.browser
def test_unrenderable_prediction_is_scored_blank(renderer):
    s = E.score_html(renderer, [None], [page()])[0]  # not text at all: the renderer refuses it
    assert s["render_error"] and all(s[k] == 0.0 for k in M.BLOCK_KEYS)


@pytest.mark.browser
def test_score_files_and_cli(tmp_path, renderer, capsys):
    from i2h.cli import main

    (tmp_path / "pred.html").write_text(page(para_top=400))
    (tmp_path / "ref.html").write_text(page())
    renderer.render(page()).image.save(tmp_path / "ref.png")

    assert main(["score", str(tmp_path / "pred.html"), str(tmp_path / "ref.html")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["position"] < 0.95 and out["text"] == 1.0 and "bleu" in out

    # A screenshot reference has no DOM: block scores are null with the reason, the visual score stays.
    s = E.score_files(tmp_path / "ref.html", tmp_path / "ref.png")
    assert s["block_match"] is None and "no DOM text boxes" in s["block_note"]
    assert s["visual"] == pytest.approx(1.0)

    assert main(["score", str(tmp_path / "nope.html"), str(tmp_path / "ref.html")]) == 2
    assert "nope.html: no such file" in capsys.readouterr().err


@pytest.mark.browser
def test_evaluate_writes_metrics_and_report(tmp_path, renderer):
    data = tmp_path / "data"
    data.mkdir()
    variants = {"p1": page(), "p2": page(title="Rocket Science Weekly", para_top=200),
                "p3": page(title="Garden Centre", extra="")}
    for stem, html in variants.items():
        (data / f"{stem}.html").write_text(html)
        renderer.render(html).image.save(data / f"{stem}.png")
    (data / "broken.png").write_bytes(b"not a png")  # a bad screenshot: listed, never stops the run
    (data / "broken.html").write_text(page())

    class Model:  # batches fail; then page by page: p1 exact, p2 raises, p3 gives something unrenderable
        calls = 0

        def predict(self, images):
            if len(images) > 1:
                raise RuntimeError("batch failed")
            Model.calls += 1
            if Model.calls == 2:
                raise RuntimeError("unreadable page")
            return [variants["p1"] if Model.calls == 1 else None]

    result = E.evaluate(Model(), data, tmp_path / "out", train=data, renderer=renderer, progress=False)
    assert (tmp_path / "out" / "metrics.json").exists() and (tmp_path / "out" / "report.html").exists()
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(saved["systems"]) == {"model", "blank", "nearest", "oracle"}
    assert saved["n_pages"] == 3 and saved["skipped_pages"][0]["id"] == "broken"
    sysm = saved["systems"]
    assert sysm["oracle"]["mean"]["block_match"] == pytest.approx(1.0)
    assert sysm["blank"]["mean"]["block_match"] == 0.0
    assert sysm["model"]["pages"][0]["overall"] == pytest.approx(1.0, abs=0.01)  # p1 predicted exactly
    assert [f["id"] for f in sysm["model"]["predict_failures"]] == ["p2"]
    assert [f["id"] for f in sysm["model"]["render_failures"]] == ["p3"]
    report = (tmp_path / "out" / "report.html").read_text()
    for p in sysm["model"]["pages"]:
        for pic in p["pictures"].values():
            assert (tmp_path / "out" / pic).exists() and pic in report
    # Worst first: the first page section in the report is the lowest-scoring page.
    worst = min(sysm["model"]["pages"], key=lambda p: p["overall"])["id"]
    assert report.index(f"<h3>{worst}</h3>") == min(report.index(f"<h3>{k}</h3>") for k in variants)
    assert result["renders"] >= 3


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name,train", [("iwbench", "design2code"), ("design2code", "iwbench")])
def test_eval_on_dev_data(shared_data, tmp_path, renderer, name, train):
    if not (shared_data / name).exists() or not (shared_data / train).exists():
        pytest.skip(f"{shared_data / name} not present")
    result = E.evaluate(None, shared_data / name, tmp_path, n=2, train=shared_data / train,
                        renderer=renderer, progress=False)
    assert set(result["systems"]) == {"blank", "nearest", "oracle"}
    assert result["systems"]["oracle"]["mean"]["text"] == pytest.approx(1.0)
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "report.html").exists()


def test_grounded_views_share_one_generation():
    from types import SimpleNamespace

    from i2h.evaluate import _GroundedViews
    from i2h.generate import Prediction

    calls = []

    class Model:
        def predict_full(self, images, ground=None):
            calls.append(len(images))
            out = []
            for _ in images:
                g = ground("<p>model</p>", None)
                out.append(Prediction(html=g.html, tokens=3, truncated=False, loop_cut=False, seconds=1.5, grounding=g))
            return out

    def grounder(html, image):
        return SimpleNamespace(html="<p>read</p>", source_html=html, seconds=0.5)

    views = _GroundedViews(Model(), grounder)
    images = [object(), object()]
    plain = views.view(grounded=False).predict_full(images)
    grounded = views.view(grounded=True).predict_full(images)
    assert calls == [2]
    assert [p.html for p in plain] == ["<p>model</p>"] * 2 and plain[0].seconds == 1.0
    assert [p.html for p in grounded] == ["<p>read</p>"] * 2 and grounded[0].seconds == 1.5
