#!/usr/bin/env bash
# Kernel-inclusive cost per query, the agent beside gdnsd: perf stat's software counters (CPU
# time, context switches, system calls) of the server process while dnsperf sends it queries.
# Hardware counters are not needed (VMs often lack them); callgrind (agent_callgrind.sh) counts
# user space only, this counts what the kernel does for each query too. Same data as
# agent_callgrind.sh (N names x 4 A; the agent through agent_run.sh: versioned policy, the
# client a known v3 container), server pinned to core 1, dnsperf to core 0, inside a private
# network namespace with loopback only. Modes:
#   paced   dnsperf -c 1 -Q 2000: about one query per wake-up (system calls per query show the
#           per-wake-up cost)
#   max     dnsperf -c 10 -q 100, as fast as it goes
#   drain   the shared harness's drain test (its limit/dnsblast.c, built here with cc): the
#           server stopped, 128 queries queued, resumed; 300 times. The server's cost with a
#           full queue and no client in the way.
#   tests/bench/agent_perfstat.sh [BUILD_DIR]        (root; perf, gdnsd, dnsperf, dig; cc for drain)
# Env: NAMES (1000), MODES ("paced max"), SERVERS ("gdnsd agent"), ROUNDS (1), SECONDS_PER_RUN
# (5), AGENT (default BUILD_DIR/agent/elasticdns-agent), CONTAINERS (10000), PEERS (the shared
# harness's peers.sh, for drain; default: found beside the checkout), PROFILE=DIR (also
# `perf record -g` each run into DIR/SERVER.MODE.ROUND.data and print its top symbols, kernel
# and user time split).
# cpu_us_per_q is wall-clock CPU time: compare servers within one run on an idle machine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/bench/bench_common.sh
source "$repo/tests/bench/bench_common.sh"
BENCH_ARGS=("$@")
build=${1:-$repo/build}
agent=${AGENT:-$build/agent/elasticdns-agent}
names=${NAMES:-1000} secs=${SECONDS_PER_RUN:-5}
bench_prologue agent-perfstat perf gdnsd dnsperf
zone=cloud66.local port=5392
write_names "$w" "$names" "$zone"
if [[ " ${MODES:-paced max} " == *" drain "* ]]; then
  peers=${PEERS:-}
  for p in "$repo/../shared/bench/peers.sh" "$repo/../../shared/bench/peers.sh"; do
    [ -z "$peers" ] && [ -x "$p" ] && peers=$p
  done
  [ -n "$peers" ] || { echo "drain: the shared harness (peers.sh) not found; set PEERS=" >&2; exit 77; }
  cc -O2 -o "$w/dnsblast" "$(dirname "$peers")/limit/dnsblast.c"
fi
[ -n "${PROFILE:-}" ] && mkdir -p "$PROFILE"

run() {  # run SERVER MODE ROUND: one line of figures
  local s=$1 mode=$2 round=$3 load=()
  start_server "$s"
  case $mode in
    paced) load=(dnsperf -s 127.0.0.1 -p "$port" -d "$w/queries" -l "$secs" -c 1 -q 100 -Q 2000);;
    max) load=(dnsperf -s 127.0.0.1 -p "$port" -d "$w/queries" -l "$secs" -c 10 -q 100);;
    drain) load=("$w/dnsblast" -s 127.0.0.1 -p "$port" -d "$w/queries" -b 64 --drain 128 \
                 --iters 300 --settle-ms 100 --pid "$pid");;
    *) echo "unknown mode $mode" >&2; exit 1;;
  esac
  local rec=""
  if [ -n "${PROFILE:-}" ]; then
    rec=$PROFILE/$s.$mode.$round.data
    perf record -q -g -F 4999 -p "$pid" -o "$rec" 2>/dev/null & local rec_pid=$!
    sleep 0.5
  fi
  perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter -p "$pid" -o "$w/perf" -- \
    taskset -c 0 "${load[@]}" > "$w/dnsperf" 2>&1
  [ -n "$rec" ] && { kill -INT "$rec_pid"; wait "$rec_pid" 2>/dev/null || true; }
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  local q; q=$(awk '/Queries completed:/ { print $3 }' "$w/dnsperf")
  [ "$mode" = drain ] && q=$(tr ' ' '\n' < "$w/dnsperf" | awk -F= '$1 == "answered" { print $2 }')
  [ -n "$q" ] && [ "$q" -gt 0 ] || { cat "$w/dnsperf" >&2; exit 1; }
  awk -F, -v q="$q" -v s="$s" -v m="$mode" -v la="$(cut -d' ' -f1 /proc/loadavg)" '
    /task-clock/ { tc = $1 } /context-switches/ { cs = $1 } /sys_enter/ { sc = $1 }
    END { printf "%-5s %-5s queries=%d cpu_us_per_q=%.2f ctxsw_per_q=%.3f syscalls_per_q=%.2f qps_per_core=%.0f load=%s\n",
          m, s, q, tc * 1000 / q, cs / q, sc / q, q / (tc / 1000), la }' "$w/perf"
  [ "$mode" = drain ] && grep -o 'qps_per_core=[0-9]*' "$w/dnsperf" | sed "s/^/      dnsblast's own figure (its whole run, server CPU from schedstat): /"
  if [ -n "$rec" ]; then  # kernel/user split and the top symbols of the server's samples
    perf report -i "$rec" --no-children --sort dso,sym --stdio 2>/dev/null |
      awk -v s="$s" -v m="$mode" '/^ +[0-9.]+%/ { p = $1 + 0; if ($3 == "[k]") k += p; else u += p; if (n++ < 12) top = top sprintf("      %s\n", $0) }
        END { printf "      %s %s profile: kernel %.1f%%, user %.1f%%; top symbols:\n%s", s, m, k, u, top }'
  fi
}

for round in $(seq "${ROUNDS:-1}"); do
  for mode in ${MODES:-paced max}; do
    for s in ${SERVERS:-gdnsd agent}; do run "$s" "$mode" "$round"; done
  done
done
