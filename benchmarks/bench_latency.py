"""End-to-end latency of one 1280x720 screenshot (model loaded once): median of several runs, with and
without text grounding (the whole i2h generate path: OCR runs while the model decodes), for the default
model (or --model)."""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    ap.add_argument("--images", nargs="*", default=sorted(str(p) for p in (ROOT / "examples").glob("*.png")))
    ap.add_argument("--runs", type=int, default=3, help="timed runs per image (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="auto", choices=["auto", "onnx", "onnx-int8", "torch", "hf"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import i2h
    from i2h.ground import make_grounder

    t0 = time.perf_counter()
    predictor = i2h.load(args.model, backend=args.backend, log=print)
    print(f"model loaded in {time.perf_counter() - t0:.1f}s; {args.threads} threads; backend {predictor.backend} "
          f"(asked: {args.backend})")
    grounder = make_grounder()
    images = [i2h.load_image(p) for p in args.images]
    rows = []
    for path, img in zip(args.images, images):
        predictor.predict_full([img])  # warm-up
        plain, grounded, tokens = [], [], 0
        for _ in range(args.runs):
            t = time.perf_counter()
            p = predictor.predict_full([img])[0]
            plain.append(time.perf_counter() - t)
            tokens = p.tokens
            if grounder is not None:
                grounder._ocr.clear()  # time a real OCR pass, not the grounder's per-screenshot cache
                t = time.perf_counter()
                predictor.predict_full([img], ground=grounder)  # as i2h generate runs it: OCR overlaps decoding
                grounded.append(time.perf_counter() - t)
        rows.append((Path(path).name, img.size, tokens, statistics.median(plain),
                     statistics.median(grounded) if grounded else float("nan")))
    print(f"{'image':28s} {'size':>10s} {'tokens':>7s} {'model s':>8s} {'tok/s':>7s} {'+ground s':>10s}")
    for name, size, tokens, s, g in rows:
        print(f"{name:28s} {size[0]:>5d}x{size[1]:<4d} {tokens:7d} {s:8.2f} {tokens / s:7.0f} {g:10.2f}")
    print(f"median over images: model {statistics.median(r[3] for r in rows):.2f}s, "
          f"with grounding {statistics.median(r[4] for r in rows):.2f}s")
    if grounder is not None:
        grounder.close()


if __name__ == "__main__":
    main()
