#!/usr/bin/env bash
# Set everything up, then turn the bundled example screenshots into HTML with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=out/examples
i2h generate examples/*.png --out "$out" --compare
echo "Done: $out/<name>.html and $out/<name>.compare.png (input | rendered output) for each example."
