"""Scoring speed: pages/s for the metrics (and for render + score), beside renders per page. Prints a table."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from i2h import metrics as M
from i2h.evaluate import load_pairs
from i2h.render import Renderer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def bench(folder: Path, n: int, renderer: Renderer) -> dict:
    pairs = [p for p in load_pairs(folder, n) if p.html is not None]
    htmls = [p.html for p in pairs]
    t0 = time.perf_counter()
    renders = renderer.render_many(htmls)
    t_render = time.perf_counter() - t0
    # Score each page against the next one: unlike pages make the matcher try merges (its worst case).
    preds = renders[1:] + renders[:1]
    pred_htmls = htmls[1:] + htmls[:1]
    t = {"blocks": 0.0, "visual": 0.0, "code": 0.0}
    n_blocks = 0
    for pred, ref, ph, rh in zip(preds, renders, pred_htmls, htmls):
        a, b = M.render_blocks(pred), M.render_blocks(ref)
        n_blocks += len(b)
        s = time.perf_counter()
        M.block_scores(a, b)
        t["blocks"] += time.perf_counter() - s
        s = time.perf_counter()
        M.visual_similarity(pred.image, ref.image)
        t["visual"] += time.perf_counter() - s
        s = time.perf_counter()
        M.code_scores(ph, rh)
        t["code"] += time.perf_counter() - s
    k = len(pairs)
    score_s = sum(t.values())
    return {"data": folder.name, "pages": k, "blocks/page": n_blocks / k, "render pages/s": k / t_render,
            "blocks pages/s": k / t["blocks"], "visual pages/s": k / t["visual"], "code pages/s": k / t["code"],
            "score pages/s": k / score_s, "render+score pages/s": k / (score_s + t_render)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", nargs="*", default=[str(DEFAULT_DATA / "iwbench"), str(DEFAULT_DATA / "design2code")])
    ap.add_argument("--n", type=int, default=20, help="pages per data set")
    ap.add_argument("--pool", type=int, default=2, help="browser pages rendering at once")
    args = ap.parse_args()
    rows = []
    with Renderer(pool_size=args.pool) as renderer:
        for d in map(Path, args.data):
            if d.exists():
                rows.append(bench(d, args.n, renderer))
            else:
                print(f"{d}: not present, skipped")
    if not rows:
        return
    keys = list(rows[0])
    print("renders per page: 1 per HTML (text boxes from the DOM); Design2Code: 3 per HTML "
          "(screenshot + two recoloured renders), then a per-pixel Python loop")
    print(" | ".join(f"{k:>14}" for k in keys))
    for r in rows:
        print(" | ".join(f"{r[k]:>14.2f}" if isinstance(r[k], float) else f"{r[k]!s:>14}" for k in keys))


if __name__ == "__main__":
    main()
