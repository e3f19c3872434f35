"""Tokens per page with and without HTML normalisation, on a folder of real pages (default: IW-Bench dev)."""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from i2h.tokenizer import normalize_html, train_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/iwbench"))
    ap.add_argument("--vocab-size", type=int, default=8192)
    args = ap.parse_args()
    files = sorted(Path(args.folder).glob("*.html"))
    if not files:
        raise SystemExit(f"{args.folder}: no .html pages")
    raw = [f.read_text(errors="replace") for f in files]
    norm = [normalize_html(t) for t in raw]
    # Two tokenizers of the same size, each trained on the form it encodes; half the pages train, the
    # other half are measured, so no page is scored by a tokenizer that saw it.
    train, test = slice(0, None, 2), slice(1, None, 2)
    tok_raw = train_tokenizer(raw[train], vocab_size=args.vocab_size, normalize=False)
    tok_norm = train_tokenizer(norm[train], vocab_size=args.vocab_size, normalize=False)
    rows = [
        ("characters", [len(t) for t in raw[test]], [len(t) for t in norm[test]]),
        ("tokens (BPE trained on that form)", [len(tok_raw(t).input_ids) for t in raw[test]],
         [len(tok_norm(t).input_ids) for t in norm[test]]),
    ]
    try:
        from i2h.tokenizer import default_tokenizer

        tok = default_tokenizer()
        rows.append(("tokens (bundled i2h tokenizer)", [len(tok(t).input_ids) for t in raw[test]],
                     [len(tok(t).input_ids) for t in norm[test]]))
    except FileNotFoundError:
        pass
    n = len(raw[test])
    print(f"{args.folder}: {n} held-out pages (of {len(files)}), vocab {args.vocab_size}")
    print(f"{'per page':36s} {'raw mean':>10s} {'norm mean':>10s} {'raw median':>11s} {'norm median':>11s} {'ratio':>6s}")
    for name, a, b in rows:
        print(f"{name:36s} {statistics.mean(a):10.0f} {statistics.mean(b):10.0f} {statistics.median(a):11.0f} "
              f"{statistics.median(b):11.0f} {sum(b) / sum(a):6.2f}")


if __name__ == "__main__":
    main()
