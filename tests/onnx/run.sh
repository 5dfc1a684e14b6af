#!/usr/bin/env bash
# The ONNX export test: export_models writes the models and zerograd's
# outputs, check.py runs ONNX's checker and shape inference (Debian's
# python3-onnx), run_ort.js runs them in ONNX Runtime (onnxruntime-node,
# installed from package-lock.json when missing, its install script skipped:
# that script only downloads CUDA libraries; the CPU runtime is in the
# package). Exits 77 (skipped), loudly, when python3-onnx or Node is missing.
# usage: run.sh EXPORT_MODELS OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export_models=$1 out=$2
if ! /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
  echo "SKIP: python3-onnx is not installed: ONNX export is NOT checked (apt-get install python3-onnx)" >&2
  exit 77
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node/npm are not installed: exported models are NOT run in ONNX Runtime" >&2
  exit 77
fi
if [ ! -d "$here/node_modules/onnxruntime-node" ]; then
  npm ci --prefix "$here" --ignore-scripts --no-audit --no-fund --loglevel=error
fi
rm -rf "$out"
mkdir -p "$out"
"$export_models" "$out"
/usr/bin/python3 "$here/check.py" "$out"
node "$here/run_ort.js" "$out"
