#!/usr/bin/env bash
# The browser test: installs puppeteer-core from package-lock.json when it
# is missing (no browser download: it drives Debian's chromium), writes the
# big pages, then drives the apple pages and the big ones in Chromium.
# usage: run.sh APPLE_SHOPPING BIG_PAGES OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
apple=$1 big=$2 out=$3
if [ ! -d "$here/node_modules/puppeteer-core" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi
mkdir -p "$out"
"$big" "$out"
node "$here/graph_player.test.js" "$apple" "$out" "$out/two_layer_net_step.html" "$out/chain1000.html"
