#!/usr/bin/env bash
# Build step of facezoo's in-browser mode: onnxruntime-web from npm (the version web/package-lock.json
# pins), its three WASM-backend files and its licence copied into facezoo/web/static/vendor/, which
# the package ships (pyproject.toml's package-data) and `facezoo export-web` copies. Nothing is
# fetched at run time. setup.sh runs this; run it again after changing web/package.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
vendor=../facezoo/web/static/vendor
mkdir -p "$vendor"
dist=node_modules/onnxruntime-web/dist
cp "$dist/ort.wasm.bundle.min.mjs" "$dist/ort-wasm-simd-threaded.mjs" "$dist/ort-wasm-simd-threaded.wasm" "$vendor/"
cp LICENSE-onnxruntime-web "$vendor/LICENSE"  # the npm package has no licence file; MIT per its package.json
echo "web/build.sh: onnxruntime-web $(node -p "require('./node_modules/onnxruntime-web/package.json').version") in facezoo/web/static/vendor ($(du -sh "$vendor" | cut -f1))"
