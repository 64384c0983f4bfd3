#!/usr/bin/env bash
# Serves the browser example (after build.sh) on http://127.0.0.1:PORT/ (default 8000).
# Usage: examples/browser/serve.sh [PORT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$here/pkg/kv_browser_example.js" ]; then
  echo "serve: $here/pkg is missing; run examples/browser/build.sh first" >&2
  exit 1
fi
port=${1:-8000}
echo "serving $here on http://127.0.0.1:$port/"
exec python3 -m http.server --bind 127.0.0.1 --directory "$here" "$port"
