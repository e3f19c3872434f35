#!/usr/bin/env bash
# Set everything up, then turn the bundled example screenshots into HTML with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=out/examples
python3 - <<'PY'
from i2h.checkpoint import DEFAULT_MODEL, CONFIG_FILE
import sys
if not (DEFAULT_MODEL / CONFIG_FILE).exists():
    sys.exit("quickstart: no default model is bundled yet; create one with "
             "`i2h model create --preset tiny --out M` and pass --model M to `i2h generate`")
PY
i2h generate examples/*.png --out "$out"
echo "HTML written to $out/"
