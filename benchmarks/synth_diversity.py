"""Diversity of synthetic pages next to a real dev set: section sequences, tags, tokens and colours per page."""
from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

from i2h.shards import count_tags

COLOR = re.compile(r"#[0-9a-fA-F]{3,6}\b|rgba?\([^)]*\)|\b(?:bg|text|border|from|to)-(?:gray|red|yellow|green|blue|indigo|purple|pink)-\d00\b")


def figures(pages: list[str], tok) -> dict:
    tags = [count_tags(h) for h in pages]
    colours = [set(COLOR.findall(h)) for h in pages]
    out = {"pages": len(pages), "tags/page": statistics.fmean(tags), "tags max": max(tags),
           "colours/page": statistics.fmean(len(c) for c in colours), "distinct colours": len(set().union(*colours)),
           "chars/page": statistics.fmean(len(h) for h in pages)}
    if tok is not None:
        toks = [len(tok(h)["input_ids"]) for h in pages]
        out["tokens/page"], out["tokens max"] = statistics.fmean(toks), max(toks)
    return out


def main() -> None:
    from i2h.synth import generate_page

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--real", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "iwbench"))
    a = ap.parse_args()
    try:
        from i2h.tokenizer import default_tokenizer, normalize_html

        tok = default_tokenizer()
    except Exception:
        tok, normalize_html = None, None
    synth = [generate_page(0, i, "mixed") for i in range(a.n)]
    rows = {"synth (mixed)": figures([p.html for p in synth], tok)}
    for style in ("tailwind", "css"):
        rows[f"synth {style}"] = figures([p.html for p in synth if p.style == style], tok)
    real_dir = Path(a.real)
    if real_dir.is_dir():
        real = [p.read_text(errors="replace") for p in sorted(real_dir.glob("*.html"))]
        if normalize_html:
            real = [normalize_html(h) for h in real]
        rows[f"{real_dir.name} (normalised)"] = figures(real, tok)
    print(f"distinct section sequences: {len({p.sections for p in synth})} of {len(synth)}; "
          f"section kinds used: {len({s for p in synth for s in p.sections})}")
    if tok is None:
        print("(no bundled tokenizer yet: token columns left out)")
    keys = list(next(iter(rows.values())).keys())
    print(f"{'':24}" + "".join(f"{k:>17}" for k in keys))
    for name, r in rows.items():
        print(f"{name:24}" + "".join(f"{r.get(k, float('nan')):>17.1f}" for k in keys))


if __name__ == "__main__":
    main()
