#!/usr/bin/env bash
# Runs one dist_check mode under `mpirun --oversubscribe -np N`, N from
# ZEROGRAD_CHECK_RANKS (default 2); as root too: the variables OpenMPI wants
# for that are set here, not in the library.
# usage: run_check.sh DIST_CHECK EXPECT MODE [ARGS...]
#   EXPECT pass:        exit 0
#   EXPECT fail:REGEX   exit non-zero within 60 s, with REGEX in the output
#   EXPECT nompi:REGEX  run without mpirun: exit non-zero with REGEX
set -u
exe=$1 expect=$2
shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ZEROGRAD_DISTRIBUTED_TIMEOUT=${ZEROGRAD_DISTRIBUTED_TIMEOUT:-60}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
if [[ $expect == nompi:* ]]; then
  env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE timeout 60 "$exe" "$@" >"$out" 2>&1
else
  timeout -s KILL 100 mpirun --oversubscribe -np "${ZEROGRAD_CHECK_RANKS:-2}" "$exe" "$@" >"$out" 2>&1
fi
rc=$?
elapsed=$(($(date +%s) - start))
cat "$out"
echo "run_check: exit status $rc after ${elapsed} s"
case $expect in
  pass)
    [ "$rc" -eq 0 ] || { echo "run_check: FAILED: expected success"; exit 1; } ;;
  fail:* | nompi:*)
    pattern=${expect#*:}
    [ "$rc" -ne 0 ] || { echo "run_check: FAILED: expected a non-zero exit"; exit 1; }
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 -o "$elapsed" -lt 100 ] || { echo "run_check: FAILED: timed out (a hang)"; exit 1; }
    [ "$elapsed" -le 60 ] || { echo "run_check: FAILED: took ${elapsed} s, more than 60"; exit 1; }
    grep -Eq -- "$pattern" "$out" || { echo "run_check: FAILED: no line matches '$pattern'"; exit 1; } ;;
  *) echo "run_check: unknown expectation $expect"; exit 2 ;;
esac
