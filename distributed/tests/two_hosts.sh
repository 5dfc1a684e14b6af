#!/usr/bin/env bash
# Two hosts on one machine: `train --distributed` across two network
# namespaces joined by a veth pair, over TCP, as docs/distributed.md's
# "Several machines" describes for real hosts. Each namespace has a host
# name of its own and sees only the addresses this script gives it; nothing
# else is contacted. Checks that
#   1. the two hosts train exactly as 2 processes on one machine do, through
#      all-reduce buckets (no shared memory between hosts);
#   2. a remote rank killed mid-run ends the job, non-zero, within 30 s;
#   3. a partition (the link goes down for good) ends the job on both hosts,
#      non-zero, within 30 s, naming the lost host, with no process left in
#      either namespace;
#   4. a partition shorter than the timeout is survived with the same result.
# Needs root and `ip netns` (CI has both); anywhere else it says why and
# exits 77, which ctest reports as skipped, never as passed.
# usage: two_hosts.sh TRAIN WORKDIR
set -euo pipefail
train=$(readlink -f "$1") work=$2
say() { echo "two_hosts: $*"; }
fail() { say "FAILED: $*"; exit 1; }

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
  say "cannot create network namespaces here (needs root and iproute2's ip netns): not run"
  exit 77
fi

rm -rf "$work" && mkdir -p "$work"
tag=zg$$
ns_a=${tag}a ns_b=${tag}b
addr_a=10.213.7.1 addr_b=10.213.7.2 subnet=10.213.7.0/24
cleanup() {
  for ns in "$ns_a" "$ns_b"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "${tag}x" type veth peer name "${tag}y"
ip link set "${tag}x" netns "$ns_a"
ip link set "${tag}y" netns "$ns_b"
ip -n "$ns_a" addr add "$addr_a/24" dev "${tag}x"
ip -n "$ns_b" addr add "$addr_b/24" dev "${tag}y"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "${tag}x" up
ip -n "$ns_b" link set "${tag}y" up
link() { ip -n "$ns_a" link set "${tag}x" "$1"; ip -n "$ns_b" link set "${tag}y" "$1"; }

# OpenMPI starts the remote daemon with `AGENT [options] HOST command...`,
# as it would run ssh. This stand-in runs the command in HOST's namespace,
# under its host name, with the bare environment ssh would give: zerograd's
# variables reach the remote rank only through mpirun's -x.
agent=$work/agent.sh
cat >"$agent" <<EOF
#!/usr/bin/env bash
while [ "\${1#-}" != "\$1" ]; do shift; done
case "\$1" in
  $addr_b|host-b) ns=$ns_b name=host-b ;;
  *) echo "agent: unknown host \$1" >&2; exit 255 ;;
esac
shift
exec ip netns exec "\$ns" unshare --uts env -i PATH=/usr/bin:/bin HOME=/root \\
  sh -c "hostname \$name && exec \$*"
EOF
chmod +x "$agent"
printf '%s slots=1\n%s slots=1\n' "$addr_a" "$addr_b" >"$work/hostfile"

# mpirun's keepalive (3 + 3 x 2 s) notices a partition before the ranks'
# own timeout (30 s) would end them: a rank's MPI_Abort during a partition
# makes mpirun queue a kill for the lost daemon, and a connection with
# unsent data is no longer probed, so mpirun would wait for TCP to give up.
timeout_s=30
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun -np 2 --hostfile "$work/hostfile" --mca plm_rsh_agent "$agent"
     --mca btl tcp,self --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet"
     --mca oob_tcp_keepalive_time 3 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3
     --bind-to none -x ZEROGRAD_DISTRIBUTED_TIMEOUT=$timeout_s)
args=(--distributed --model two-layer --limit 2000 --threads 1)
# "${on_a[@]}" COMMAND...: runs COMMAND on host a, where mpirun runs.
on_a=(ip netns exec "$ns_a" unshare --uts sh -c 'hostname host-a && exec "$@"' sh)

# 1. The same run on one machine and across the two hosts.
epochs() { grep '^epoch [0-9]*:' "$1" | sed 's/ ([0-9.]*s training)//'; }
timeout -s KILL 120 mpirun --oversubscribe -np 2 "$train" "${args[@]}" --epochs 4 --out "$work/one" \
  >"$work/one.log" 2>&1 || { cat "$work/one.log"; fail "2 processes on one machine"; }
timeout -s KILL 120 "${on_a[@]}" "${mpi[@]}" "$train" "${args[@]}" --epochs 4 --out "$work/two" \
  >"$work/two.log" 2>&1 || { cat "$work/two.log"; fail "2 processes on two hosts"; }
grep -qx 'gradients: averaged over 2 processes through all-reduce buckets' "$work/two.log" ||
  { cat "$work/two.log"; fail "the two hosts did not average through all-reduce buckets"; }
[ -n "$(epochs "$work/two.log")" ] && [ "$(epochs "$work/one.log")" = "$(epochs "$work/two.log")" ] ||
  fail "one machine and two hosts differ: $(epochs "$work/one.log") vs $(epochs "$work/two.log")"
say "two hosts train as one machine: $(epochs "$work/two.log" | tr '\n' ' ')"

# Runs a long job in the background on host a; waits until it trains.
long_run() {  # long_run NAME
  "${on_a[@]}" "${mpi[@]}" "$train" "${args[@]}" --epochs 1000 --out "$work/$1" >"$work/$1.log" 2>&1 &
  job=$!
  for _ in $(seq 300); do
    grep -q '^epoch 1:' "$work/$1.log" 2>/dev/null && return 0
    kill -0 "$job" 2>/dev/null || { cat "$work/$1.log"; fail "$1: the job ended before training"; }
    sleep 0.1
  done
  cat "$work/$1.log"; fail "$1: no epoch within 30 s"
}
# Waits for the background job to end within LIMIT seconds; it must fail.
ends_within() {  # ends_within NAME LIMIT
  local t0=$SECONDS
  while kill -0 "$job" 2>/dev/null; do
    [ $((SECONDS - t0)) -le "$2" ] || { kill -9 "$job"; cat "$work/$1.log"; fail "$1: the job still ran after $2 s"; }
    sleep 0.2
  done
  local rc=0
  wait "$job" || rc=$?
  [ "$rc" -ne 0 ] || { cat "$work/$1.log"; fail "$1: the job exited 0"; }
  say "$1: the job ended with status $rc after $((SECONDS - t0)) s"
}
# Waits until no process is left in either namespace.
nothing_left() {  # nothing_left NAME
  for _ in $(seq 100); do
    [ -z "$(ip netns pids "$ns_a")$(ip netns pids "$ns_b")" ] && return 0
    sleep 0.1
  done
  ps -o pid,args -p "$(ip netns pids "$ns_a") $(ip netns pids "$ns_b")" || true
  fail "$1: processes were left behind"
}

# 2. A remote rank killed.
long_run killed
pid=$(ip netns pids "$ns_b" | xargs -r ps -o pid=,comm= -p | awk '$2 == "train" { print $1 }')
[ -n "$pid" ] || fail "killed: no train process on host b"
kill -9 $pid
ends_within killed 30
nothing_left killed

# 3. A partition for good: both sides end, and the log names the lost host.
long_run partition
link down
ends_within partition 30
grep -A3 "ORTE has lost communication with a remote daemon" "$work/partition.log" | grep -q "on node $addr_b" ||
  { cat "$work/partition.log"; fail "partition: the log does not name the lost host"; }
nothing_left partition
link up

# 4. A partition shorter than the timeout, in the middle of the run: the
#    run goes on, to the same result.
"${on_a[@]}" "${mpi[@]}" "$train" "${args[@]}" --epochs 4 --out "$work/blip" >"$work/blip.log" 2>&1 &
job=$!
for _ in $(seq 300); do grep -q '^epoch 1:' "$work/blip.log" 2>/dev/null && break; sleep 0.05; done
kill -0 "$job" 2>/dev/null || { cat "$work/blip.log"; fail "blip: the run ended before the partition"; }
link down
sleep 2
kill -0 "$job" 2>/dev/null || { cat "$work/blip.log"; fail "blip: the run ended during the partition"; }
link up
wait "$job" || { cat "$work/blip.log"; fail "blip: a 2 s partition ended the job"; }
[ "$(epochs "$work/blip.log")" = "$(epochs "$work/one.log")" ] ||
  fail "blip: the result changed: $(epochs "$work/blip.log") vs $(epochs "$work/one.log")"
say "a 2 s partition was survived with the same result"
say "passed"
