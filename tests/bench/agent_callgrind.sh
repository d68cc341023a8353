#!/usr/bin/env bash
# User-space instructions per query, the agent beside gdnsd, counted by callgrind (exact and
# repeatable on a busy machine, unlike q/s). Both serve the peers.sh data (N names x 4 A, the
# agent through tests/bench/agent_run.sh: versioned policy, the client a known v3 container).
# Each server runs under callgrind twice, answering Q1 and then Q2 queries from dnsperf; the
# difference divided by Q2 - Q1 is the cost of a query without start-up and shutdown. Two loads:
#   full    dnsperf -c 1 -q 100, as fast as the server goes (under callgrind the socket queue
#           is always full: large recvmmsg batches, as in peers.sh's drain test)
#   paced   dnsperf -Q 300: one query per wake-up (moderate load: wake-ups and small batches)
# Kernel work (the UDP stack, ~4 us a query) is not counted. Inside a private network namespace
# with loopback only.
#   tests/bench/agent_callgrind.sh [BUILD_DIR]        (root; valgrind, gdnsd, dnsperf)
# Env: NAMES (1000), Q1 (2000), Q2 (6000), MODES ("full paced"), SERVERS ("gdnsd agent"),
# AGENT (the agent binary; default BUILD_DIR/agent/elasticdns-agent), CONTAINERS (10000).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/bench/bench_common.sh
source "$repo/tests/bench/bench_common.sh"
BENCH_ARGS=("$@")
build=${1:-$repo/build}
agent=${AGENT:-$build/agent/elasticdns-agent}
names=${NAMES:-1000} q1=${Q1:-2000} q2=${Q2:-6000}
bench_prologue agent-callgrind valgrind gdnsd dnsperf
zone=cloud66.local port=5391
write_names "$w" "$names" "$zone"

start() {  # start SERVER OUTFILE: under callgrind, pinned to core 1; waits for an answer
  start_server "$1" valgrind --tool=callgrind --callgrind-out-file="$2" --dump-instr=no
}

total_ir() {  # the Ir total of a callgrind output (every thread's file)
  awk '/^(summary|totals):/ { s += $2 } END { print s + 0 }' "$1"*
}

run() {  # run SERVER MODE QUERIES: Ir of a whole run
  local s=$1 mode=$2 q=$3 out=$w/cg.$1.$2.$3
  start "$s" "$out"
  local passes=$((q / names)) rate=()
  [ "$mode" = paced ] && rate=(-Q 300)
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$w/queries" -n "$passes" -c 1 -q 100 -t 30 \
    "${rate[@]}" > "$w/dnsperf.$s.$mode.$q" 2>&1
  grep -q 'Queries completed' "$w/dnsperf.$s.$mode.$q" || { cat "$w/dnsperf.$s.$mode.$q" >&2; exit 1; }
  local lost; lost=$(awk '/Queries lost:/ { print $3 }' "$w/dnsperf.$s.$mode.$q")
  [ "$lost" = 0 ] || echo "warning: $s $mode: $lost queries lost" >&2
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  total_ir "$out"
}

echo "# callgrind Ir per query (user space only): (Ir[$q2 queries] - Ir[$q1 queries]) / $((q2 - q1))"
for mode in ${MODES:-full paced}; do
  for s in ${SERVERS:-gdnsd agent}; do
    a=$(run "$s" "$mode" "$q1"); b=$(run "$s" "$mode" "$q2")
    echo "$mode $s Ir_per_query=$(( (b - a) / (q2 - q1) )) (Ir $a / $b)"
  done
done
