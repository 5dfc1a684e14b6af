#!/usr/bin/env bash
# Both directions of docs/pytorch-weights.md's interop commands, with PyTorch
# itself: skipped (exit 77) on a machine without python3-torch, as in CI.
# usage: torch_roundtrip.sh SOURCE_DIR TORCH_INTEROP_EXE
set -euo pipefail
src=$1 exe=$2
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "no python3-torch: skipped"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
script="$src/examples/torch_interop.py"
# The sequence models at small sizes (token ids (3, 5)), the same on both sides.
lstm=(--vocab 20 --embed 8 --hidden 16 --layers 2)
gpt=(--vocab 20 --embed 16 --layers 2 --heads 2 --block 8)
for model in two-layer simple-cnn deep-cnn lstm-lm gpt; do
  sizes=()
  [ "$model" = lstm-lm ] && sizes=("${lstm[@]}")
  [ "$model" = gpt ] && sizes=("${gpt[@]}")
  echo "== $model: PyTorch -> zerograd"
  /usr/bin/python3 "$script" export --model "$model" "${sizes[@]}" --seed 7 --out "$work/t.npz" \
    --inputs "$work/x.npy" --predictions "$work/t_y.npy"
  "$exe" --model "$model" "${sizes[@]}" --load "$work/t.npz" --inputs "$work/x.npy" --expect "$work/t_y.npy"
  echo "== $model: zerograd -> PyTorch"
  "$exe" --model "$model" "${sizes[@]}" --seed 8 --save "$work/z.npz" --inputs "$work/x.npy" \
    --predictions "$work/z_y.npy"
  /usr/bin/python3 "$script" predict --model "$model" "${sizes[@]}" --weights "$work/z.npz" \
    --inputs "$work/x.npy" --expect "$work/z_y.npy"
  rm -f "$work"/*.npy "$work"/*.npz
done
