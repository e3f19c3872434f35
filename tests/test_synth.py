"""The synthetic generator: pure, seeded, varied, WebSight-sized, in normalised form; synth shards reproducible."""
from __future__ import annotations

import io
import re
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from i2h.synth import generate_page, page_seed
from i2h.synth.tw2css import class_table


@pytest.fixture(scope="module")
def pages():
    return [generate_page(3, i, "mixed") for i in range(120)]


def test_pure_function_of_seed_and_index(pages):
    assert generate_page(3, 17, "mixed") == pages[17]
    assert generate_page(4, 17, "mixed").html != pages[17].html
    assert page_seed(3, 1) != page_seed(3, 2)


def test_both_styles_and_tailwind_classes_exist(pages):
    styles = Counter(p.style for p in pages)
    assert styles["tailwind"] > 20 and styles["css"] > 20
    known = class_table()
    for p in pages:
        if p.style == "tailwind":
            assert "tailwindcss@2.2.19/dist/tailwind.min.css" in p.html
            for cls in re.findall(r'class="([^"]*)"', p.html):
                assert all(c in known for c in cls.split()), cls
        else:
            assert "<style>" in p.html and "tailwind" not in p.html


def test_variety_and_size(pages):
    kinds = Counter(s for p in pages for s in p.sections)
    assert len(kinds) >= 15
    assert len({p.sections for p in pages}) > 40
    assert all(20 <= p.n_tags <= 70 for p in pages)
    assert len({p.html for p in pages}) == len(pages)


def test_emitted_in_normalised_form(pages):
    normalize_html = pytest.importorskip("i2h.tokenizer").normalize_html
    for p in pages[:60]:
        assert normalize_html(p.html) == p.html


def test_same_page_in_both_styles_has_same_text():
    a, b = generate_page(5, 1, "tailwind"), generate_page(5, 1, "css")
    strip = lambda h: re.sub(r"<[^>]+>", " ", h.split("</head>")[1]).split()
    assert strip(a.html) == strip(b.html)


def _read(d):
    rows = []
    for f in sorted(d.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


@pytest.mark.browser
@pytest.mark.slow
def test_synth_twice_identical_resumable_and_rerenderable(tmp_path):
    from i2h.cli import main
    from i2h.render import Renderer
    from i2h.shards import synth_shards

    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["data", "synth", "--n", "6", "--seed", "7", "--style", "mixed", "--out", str(a)]) == 0
    synth_shards(b, 4, seed=7, style="mixed", shard_size=3, progress=False)
    synth_shards(b, 6, seed=7, style="mixed", shard_size=3, progress=False)  # extended: pages 4..5 only
    ra, rb = _read(a), _read(b)
    assert [r["index"] for r in sorted(rb, key=lambda r: r["index"])] == list(range(6))  # no duplicates
    ra.sort(key=lambda r: r["index"]), rb.sort(key=lambda r: r["index"])
    assert [r["text"] for r in ra] == [r["text"] for r in rb]
    pix = lambda r: np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB"))
    assert all(np.array_equal(pix(x), pix(y)) for x, y in zip(ra, rb))
    assert synth_shards(b, 6, seed=7, style="mixed", progress=False)["written"] == 0
    with Renderer() as r:  # `i2h render` of a stored page gives its stored image
        res = r.render(ra[2]["text"])
    assert np.array_equal(np.asarray(res.image), pix(ra[2]))
    assert main(["data", "synth", "--n", "6", "--seed", "8", "--out", str(a)]) == 2  # other settings: refused
    assert not list(a.glob(".*tmp"))


@pytest.mark.browser
def test_cli_render(tmp_path):
    from i2h.cli import main

    src = tmp_path / "p.html"
    src.write_text(generate_page(1, 0, "tailwind").html)
    out = tmp_path / "out"
    assert main(["render", str(src), str(tmp_path / "missing.html"), "--out", str(out), "--full-page"]) == 1
    img = Image.open(out / "p.png")
    assert img.width == 1280 and img.height >= 720
