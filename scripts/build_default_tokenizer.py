"""Rebuild the bundled HTML tokenizer (src/i2h/assets/tokenizer) from synthetic pages: no browser needed."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from i2h.synth import generate_html, resolve_style
from i2h.tokenizer import ASSET_TOKENIZER, save_tokenizer, train_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=6000, help="pages")
    ap.add_argument("--seed", type=int, default=100, help="a stream no training or test set uses")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--out", default=str(ASSET_TOKENIZER))
    args = ap.parse_args()
    t0 = time.perf_counter()
    pages = [generate_html(args.seed, i, resolve_style("mixed", args.seed, i)) for i in range(args.n)]
    tok = train_tokenizer(pages, vocab_size=args.vocab_size)
    save_tokenizer(tok, Path(args.out))
    lengths = sorted(len(tok(p).input_ids) for p in pages[:500])
    print(f"wrote {args.out}: vocab {len(tok)}, {args.n} pages (seed {args.seed}), {time.perf_counter() - t0:.0f}s; "
          f"tokens/page median {lengths[len(lengths) // 2]}, p95 {lengths[int(len(lengths) * 0.95)]}, max {lengths[-1]}")


if __name__ == "__main__":
    main()
