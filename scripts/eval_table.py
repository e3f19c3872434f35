"""Print the summary of one or more `i2h eval` metrics.json files as a Markdown table (for model cards)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = [("block_match", "Block"), ("text", "Text"), ("position", "Position"), ("color", "Color"),
        ("visual", "SSIM"), ("overall", "Overall"), ("valid_html", "Valid HTML"), ("repetition_loop", "Loops"),
        ("truncated", "Truncated"), ("predict_seconds", "s/page")]


def main(paths: list[str]) -> None:
    print("| data | system | " + " | ".join(label for _, label in KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for path in paths:
        m = json.loads(Path(path).read_text())
        data = Path(m["data"]).name
        for name, s in m["systems"].items():
            cells = []
            for key, _ in KEYS:
                v = s["mean"].get(key)
                if v is None:
                    cells.append("–")
                elif key == "predict_seconds":
                    cells.append(f"{v:.1f}")
                else:
                    cells.append(f"{100 * v:.1f}")
            print(f"| {data} ({m['n_pages']}) | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
