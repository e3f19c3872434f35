"""Compare OCR engines on screenshots whose text is known: word accuracy, line boxes and seconds per page.

    python benchmarks/bench_ocr.py --pages 12                # synthetic pages + IW-Bench (when present)
    python benchmarks/bench_ocr.py --pages 12 --configs tesseract@2 rapidocr

Truth is the DOM: every text node's words and box from our renderer (IW-Bench: its HTML rendered at
1280x720, text inside the screenshot only). Words are compared as lower-cased multisets, punctuation
stripped. Line boxes: share of OCR lines whose centre lies in a true text box (precision) and share of
true text boxes holding an OCR line centre (recall).
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

from PIL import Image

from i2h.ocr import RapidOcrEngine, TesseractEngine, read_timed
from i2h.render import Renderer
from i2h.synth import generate_html

IWBENCH = Path("/work/shared/data/iwbench")
_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def make_engine(spec: str):
    """`tesseract@2` (scale 2, page segmentation 11), `tesseract@2/psm3`, `tesseract@2/flip` (dark panels inverted), `rapidocr`."""
    name, _, rest = spec.partition("@")
    if name == "rapidocr":
        return RapidOcrEngine()
    parts = (rest or "2").split("/")
    psm = next((int(p[3:]) for p in parts if p.startswith("psm")), 11)
    return TesseractEngine(scale=float(parts[0]), psm=psm, flip_dark="flip" in parts)


def score(lines, boxes) -> dict[str, float]:
    truth = Counter(w for b in boxes for w in words(b.text))
    got = Counter(w for ln in lines for w in words(ln.text))
    inter = sum((truth & got).values())
    rec = inter / max(1, sum(truth.values()))
    prec = inter / max(1, sum(got.values()))
    f1 = 2 * rec * prec / (rec + prec) if rec + prec else 0.0

    def inside(cx, cy, b, pad=4):
        return b.x - pad <= cx <= b.x + b.width + pad and b.y - pad <= cy <= b.y + b.height + pad

    centres = [(ln.x + ln.width / 2, ln.y + ln.height / 2) for ln in lines]
    box_p = sum(any(inside(cx, cy, b) for b in boxes) for cx, cy in centres) / max(1, len(centres))
    box_r = sum(any(inside(cx, cy, b) for cx, cy in centres) for b in boxes) / max(1, len(boxes))
    return {"word_recall": rec, "word_precision": prec, "word_f1": f1, "line_box_precision": box_p,
            "line_box_recall": box_r}


def datasets(n: int, seed: int):
    """(name, [(image, truth boxes)])"""
    with Renderer(width=1280, height=720, pool_size=2) as r:
        synth = [(res.image, res.boxes) for res in r.render_many([generate_html(seed, i, "mixed") for i in range(n)])]
        yield "synthetic", synth
    if IWBENCH.is_dir():
        pngs = sorted(IWBENCH.glob("*.png"))[:n]
        with Renderer(width=1280, height=720, pool_size=2) as r:
            refs = r.render_many([p.with_suffix(".html").read_text(encoding="utf-8", errors="replace") for p in pngs])
        pages = []
        for p, ref in zip(pngs, refs):
            img = Image.open(p).convert("RGB")
            pages.append((img, [b for b in ref.boxes if b.y + b.height <= img.height]))
        yield "iwbench", pages
    else:
        print(f"{IWBENCH}: not present, IW-Bench skipped", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=12)
    ap.add_argument("--seed", type=int, default=777, help="synthetic stream (held out from training seeds)")
    ap.add_argument("--configs", nargs="+", default=["tesseract@1", "tesseract@2", "tesseract@2/flip", "tesseract@2/psm3", "rapidocr"])
    args = ap.parse_args()
    engines = {}
    for spec in args.configs:
        try:
            engines[spec] = make_engine(spec)
        except Exception as e:  # an engine that is not installed is reported, the others still run
            print(f"{spec}: skipped ({e})", file=sys.stderr)
    keys = ("word_f1", "word_recall", "word_precision", "line_box_precision", "line_box_recall")
    print(f"| data | engine | {' | '.join(keys)} | s/page (median) |")
    print("|---|---|" + "---|" * (len(keys) + 1))
    for data_name, pages in datasets(args.pages, args.seed):
        for spec, engine in engines.items():
            rows, secs = [], []
            for img, boxes in pages:
                try:
                    lines, s = read_timed(engine, img)
                except Exception as e:  # one page failing never stops the comparison
                    print(f"{data_name}/{spec}: page failed ({e})", file=sys.stderr)
                    continue
                rows.append(score(lines, boxes))
                secs.append(s)
            if not rows:
                continue
            means = [statistics.mean(r[k] for r in rows) for k in keys]
            print(f"| {data_name} ({len(rows)}) | {spec} | " + " | ".join(f"{m:.3f}" for m in means)
                  + f" | {statistics.median(secs):.2f} |", flush=True)


if __name__ == "__main__":
    main()
