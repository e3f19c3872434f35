"""Text grounding before and after: Design2Code block scores of stand-in predictions, and seconds per page.

    python benchmarks/bench_ground.py --pages 20                 # synthetic (held-out seed) + IW-Bench
    python benchmarks/bench_ground.py --pages 20 --data iwbench

No model is trained yet, so two stand-ins play the prediction:
  scrambled  the reference HTML with every word replaced by a random one (layout right, words wrong:
             exactly what a small model that cannot read produces at best)
  nearest    the HTML of the most similar-looking other page of the set (evaluate.py's baseline)
Each is scored against the reference (our renderer, DOM text boxes, metrics.block_scores) as predicted
and after ground_html with the reference screenshot. Times: OCR and the rest of grounding, per page.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from i2h import metrics as M
from i2h.evaluate import NearestBaseline, Pair
from i2h.ground import _parse, _serialize, _text_nodes, ground_html
from i2h.ocr import get_engine, read_timed
from i2h.render import Renderer
from i2h.synth import generate_html

IWBENCH = Path("/work/shared/data/iwbench")
DESIGN2CODE = Path("/work/shared/data/design2code")
KEYS = ("block_match", "text", "position", "color")


def scramble_text(html: str, seed: int) -> str:
    """The same page with each word of each text node replaced by a random word (capitals kept)."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    root = _parse(html)

    def swap(m: re.Match) -> str:
        w = fake.word() if rng.random() < 0.8 else fake.word() + " " + fake.word()  # lengths drift too
        return w.capitalize() if m.group(0)[:1].isupper() else w

    for n in _text_nodes(root):
        old = getattr(n.holder, n.attr)
        setattr(n.holder, n.attr, re.sub(r"[A-Za-z][\w'-]*", swap, old))
    return _serialize(root, bool(re.match(r"\s*<!doctype", html, re.I)))


def pages_of(name: str, n: int, seed: int) -> list[tuple[str, str, Image.Image | None]]:
    """(id, reference HTML, screenshot or None = the reference's own render)."""
    if name == "synthetic":
        return [(f"{seed}-{i}", generate_html(seed, i, "mixed"), None) for i in range(n)]
    folder = {"iwbench": IWBENCH, "design2code": DESIGN2CODE}[name]
    out = []
    for png in sorted(folder.glob("*.png")):
        html = png.with_suffix(".html")
        if html.exists():
            out.append((png.stem, html.read_text(encoding="utf-8", errors="replace"), Image.open(png).convert("RGB")))
        if len(out) >= n:
            break
    return out


def scores(renderer, htmls: list[str], ref_render) -> list[dict]:
    refb = M.render_blocks(ref_render)
    return [M.block_scores(M.render_blocks(r), refb) for r in renderer.render_many(htmls)]


def run(name: str, n: int, seed: int, engine, renderer) -> None:
    pages = pages_of(name, n, seed)
    if not pages:
        print(f"{name}: no pages found, skipped", file=sys.stderr)
        return
    refs = renderer.render_many([h for _, h, _ in pages])
    shots = [img if img is not None else ref.image for (_, _, img), ref in zip(pages, refs)]
    nearest = NearestBaseline([Pair(pid, img, h) for (pid, h, _), img in zip(pages, shots)], max_pages=None)
    table = {s: {"before": [], "after": []} for s in ("scrambled", "nearest")}
    ocr_s, ground_s, counts = [], [], {"replaced": 0, "added": 0, "removed": 0, "kept": 0}
    for k, ((pid, html, _), ref, shot) in enumerate(zip(pages, refs, shots)):
        try:
            lines, t_ocr = read_timed(engine, shot)
        except Exception as e:  # one page failing never stops the benchmark
            print(f"{name}/{pid}: OCR failed ({e})", file=sys.stderr)
            continue
        ocr_s.append(t_ocr)
        preds = {"scrambled": scramble_text(html, seed * 1000 + k), "nearest": nearest.predict([shot])[0]}
        for s, pred in preds.items():
            g = ground_html(pred, shot, renderer, lines=lines)
            if g.error:
                print(f"{name}/{pid}/{s}: grounding failed ({g.error})", file=sys.stderr)
            if s == "scrambled":
                ground_s.append(g.seconds)
                for c in counts:
                    counts[c] += getattr(g, c)
            before, after = scores(renderer, [pred, g.html], ref)
            table[s]["before"].append(before)
            table[s]["after"].append(after)
    n_done = len(ocr_s)
    for s, t in table.items():
        for when in ("before", "after"):
            rows = t[when]
            if rows:
                means = [100 * statistics.mean(r[k] for r in rows) for k in KEYS]
                print(f"| {name} ({n_done}) | {s} | {when} | " + " | ".join(f"{m:.1f}" for m in means) + " |", flush=True)
    if ocr_s:
        total = [a + b for a, b in zip(ocr_s, ground_s)]
        print(f"  {name}: grounding per page, median: OCR {statistics.median(ocr_s):.2f} s + match/rewrite "
              f"{statistics.median(ground_s):.2f} s = {statistics.median(total):.2f} s; over {n_done} scrambled "
              f"pages {counts}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--seed", type=int, default=9001, help="synthetic stream, held out from training seeds")
    ap.add_argument("--data", nargs="+", default=["synthetic", "iwbench"], choices=["synthetic", "iwbench", "design2code"])
    ap.add_argument("--engine", default=None, help="tesseract, rapidocr or auto (default: $I2H_OCR_ENGINE or auto)")
    args = ap.parse_args()
    engine = get_engine(args.engine)
    print(f"engine: {engine.name}")
    print("| data (pages) | stand-in | grounding | Block | Text | Position | Color |")
    print("|---|---|---|---|---|---|---|")
    with Renderer(width=1280, height=720, pool_size=2) as renderer:
        for name in args.data:
            run(name, args.pages, args.seed, engine, renderer)


if __name__ == "__main__":
    main()
