#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks: Chromium (rendering), Tesseract (OCR), then i2h.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)  # OCR for text grounding
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${need[@]}"
fi
python3 -m pip install -q -e ".[serve,train,dev,fast]"
