#!/usr/bin/env bash
# The train command with --distributed, as docs/distributed.md runs it: 2 processes,
# 1 process and train without mpirun reach the same result, each resumes the other's
# checkpoint, only rank 0 reports, and an indivisible batch is a usage error.
# usage: train_check.sh TRAIN WORKDIR
set -euo pipefail
train=$1 work=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ZEROGRAD_DISTRIBUTED_TIMEOUT=60
rm -rf "$work" && mkdir -p "$work"
args=(--distributed --model two-layer --limit 2000 --epochs 1 --threads 1)
run() {  # run NP OUT [extra args]: prints the epoch lines
  local np=$1 out=$2
  shift 2
  timeout -s KILL 100 mpirun --oversubscribe -np "$np" "$train" "${args[@]}" --out "$work/$out" "$@" >"$work/$out.log" 2>&1 ||
    { cat "$work/$out.log"; echo "train_check: mpirun -np $np failed"; exit 1; }
  grep '^epoch [0-9]*:' "$work/$out.log"
}
accuracy() { grep -o 'test accuracy [0-9.]*' <<<"$1" | awk '{print $3}'; }
close() {  # close A B WHAT: within 0.002 (an argmax may flip on a last-bit difference)
  awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.002) }' ||
    { echo "train_check: $3: $1 vs $2"; exit 1; }
  echo "train_check: $3: $1 vs $2"
}
two=$(run 2 two --save "$work/two.npz")
one=$(run 1 one --save "$work/one.npz")
[ "$(wc -l <<<"$two")" -eq 1 ] || { echo "train_check: expected one epoch line from rank 0 only, got: $two"; exit 1; }
grep -qx 'gradients: averaged over 2 processes through a shared-memory window' "$work/two.log" ||
  { cat "$work/two.log"; echo "train_check: no line saying how gradients are averaged"; exit 1; }
close "$(accuracy "$two")" "$(accuracy "$one")" "test accuracy after 1 epoch, 2 processes vs 1"
# Without mpirun and --distributed: the same steps, so the same result.
"$train" "${args[@]:1}" --out "$work/plain" >"$work/plain.log" 2>&1 || { cat "$work/plain.log"; exit 1; }
plain=$(grep '^epoch [0-9]*:' "$work/plain.log")
close "$(accuracy "$plain")" "$(accuracy "$two")" "test accuracy after 1 epoch, train alone vs 2 processes"
loss() { grep -o 'train loss [0-9.]*' <<<"$1" | awk '{print $3}'; }
close "$(loss "$plain")" "$(loss "$two")" "train loss of epoch 1, train alone vs 2 processes"
[ -f "$work/two/metrics.csv" ] && [ -f "$work/two.npz" ] || { echo "train_check: rank 0 wrote no metrics or checkpoint"; exit 1; }
two_on_one=$(run 1 two_on_one --resume "$work/two.npz")
one_on_two=$(run 2 one_on_two --resume "$work/one.npz")
close "$(accuracy "$two_on_one")" "$(accuracy "$one_on_two")" "epoch 2 resumed on 1 process from 2 vs on 2 from 1"
if timeout 60 mpirun --oversubscribe -np 2 "$train" "${args[@]}" --batch-size 101 --out "$work/bad" >"$work/bad.log" 2>&1; then
  echo "train_check: --batch-size 101 on 2 processes was accepted"; exit 1
fi
grep -q 'must divide evenly among the 2 processes' "$work/bad.log" || { cat "$work/bad.log"; exit 1; }
echo "train_check: passed"
