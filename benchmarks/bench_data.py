"""Throughput of the data path: pages/s rendered against the page pool size, loader samples/s against workers."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def bench_render(n: int, pools: list[int], style: str) -> None:
    from i2h.render import Renderer
    from i2h.synth import generate_page

    htmls = [generate_page(0, i, style).html for i in range(n)]
    print(f"render: {n} synthetic {style} pages, 1280 px wide, full page")
    print(f"{'pool':>5} {'pages/s':>8}")
    for pool in pools:
        with Renderer(pool_size=pool) as r:
            r.render_many(htmls[:pool])  # warm the slots
            start = time.perf_counter()
            res = r.render_many(htmls)
            dt = time.perf_counter() - start
        assert not any(x.error for x in res)
        print(f"{pool:>5} {n / dt:>8.2f}")


def bench_loader(n: int, workers: list[int]) -> None:
    from i2h.data import make_loader
    from i2h.shards import synth_shards

    try:
        from i2h.tokenizer import default_tokenizer

        tok = default_tokenizer()
        tok_name = "bundled tokenizer"
    except Exception:  # no bundled tokenizer yet: a char-level stand-in keeps the figures comparable
        class Char:
            pad_token_id, eos_token_id = 0, 1

            def __call__(self, text):
                return {"input_ids": [2 + ord(c) % 200 for c in text] + [1]}

        tok, tok_name = Char(), "char stand-in tokenizer"
    try:
        from i2h.images import ImageProcessor

        proc = ImageProcessor(width=512, height=512, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    except Exception:
        proc = lambda img: torch.zeros(3, 512, 512)
    with tempfile.TemporaryDirectory() as d:
        synth_shards(d, n, seed=1, style="mixed", progress=False)
        print(f"loader: {n} rendered pages from local shards, 512x512 images, {tok_name}, batch 8")
        print(f"{'workers':>7} {'samples/s':>10}")
        for w in workers:
            loader = make_loader(d, tok, proc, batch_size=8, num_workers=w, max_length=100_000, shuffle_buffer=64)
            start = time.perf_counter()
            count = sum(b["size"] for b in loader)
            print(f"{w:>7} {count / (time.perf_counter() - start):>10.1f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pages", type=int, default=24)
    ap.add_argument("--pools", default="1,2,4")
    ap.add_argument("--style", default="tailwind")
    ap.add_argument("--loader-pages", type=int, default=64)
    ap.add_argument("--workers", default="0,1,2")
    a = ap.parse_args()
    bench_render(a.pages, [int(x) for x in a.pools.split(",")], a.style)
    bench_loader(a.loader_pages, [int(x) for x in a.workers.split(",")])
