#!/usr/bin/env bash
# Set up a fresh checkout: a virtual environment in .venv with facezoo, every extra ("all": torch
# for training and exporting, the teachers with dlib-bin for the dlib port's parity test, serve,
# batch, Ray) and the test tools, the example third-party plugin, onnxruntime-web (npm) for the in-browser mode, plus Debian's Chromium for the browser test when it is missing and this user may install
# it (playwright never downloads a browser here).
# README's first command and .ci/run both start with it (tests/test_docs.py checks that they do).
set -euo pipefail
cd "$(dirname "$0")"

bash web/build.sh  # onnxruntime-web from npm for the in-browser mode (build time only; see docs/browser.md)
python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e ".[all,test]"
.venv/bin/python -m pip install --quiet ./docs/example_plugin  # a second step: pip 23 cannot resolve it beside ".[test]"

if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo); else as_root=(false); fi
  { "${as_root[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium >/dev/null; } \
    || echo "setup: chromium could not be installed (needs root or sudo); tests/test_serve_browser.py will skip and say why" >&2
fi
