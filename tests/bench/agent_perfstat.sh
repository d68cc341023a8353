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
#   tests/bench/agent_perfstat.sh [BUILD_DIR]        (root; perf, gdnsd, dnsperf, dig)
# Env: NAMES (1000), MODES ("paced max"), SERVERS ("gdnsd agent"), ROUNDS (1), SECONDS_PER_RUN
# (5), AGENT (default BUILD_DIR/agent/elasticdns-agent), CONTAINERS (10000).
# cpu_us_per_q is wall-clock CPU time: compare servers within one run on an idle machine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/bench/bench_names.sh
source "$repo/tests/bench/bench_names.sh"
build=${1:-$repo/build}
agent=${AGENT:-$build/agent/elasticdns-agent}
names=${NAMES:-1000} secs=${SECONDS_PER_RUN:-5}
for tool in perf gdnsd dnsperf dig unshare taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 77; }
done
[ -x "$agent" ] || { echo "build $agent first" >&2; exit 1; }
if [ -z "${IN_NETNS:-}" ]; then  # loopback only, whatever a server does
  exec unshare -n env IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

w=$(mktemp -d /tmp/agent-perfstat.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$w"
}
trap cleanup EXIT
zone=cloud66.local port=5392
write_names "$w" "$names" "$zone"

start() {  # start SERVER: pinned to core 1; waits for an answer
  local s=$1 d=$w/$1
  rm -rf "$d" && mkdir -p "$d"
  case $s in
    gdnsd)
      mkdir -p "$d/etc/zones" "$d/run" "$d/state"
      printf 'options => {\n listen => [ 127.0.0.1 ]\n dns_port => %s\n udp_threads => 1\n tcp_threads => 1\n run_dir => %s/run\n state_dir => %s/state\n}\n' \
        "$port" "$d" "$d" > "$d/etc/config"
      cp "$w/zone" "$d/etc/zones/$zone"
      taskset -c 1 gdnsd -c "$d/etc" -f start > "$d/log" 2>&1 &;;
    agent)
      taskset -c 1 bash "$repo/tests/bench/agent_run.sh" "$agent" "$w/hosts" "$d" 127.0.0.1 \
        "$port" "${CONTAINERS:-10000}" > "$d/log" 2>&1 &;;
  esac
  pid=$!
  for _ in $(seq 600); do
    dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "svc1.$zone" A 2>/dev/null | grep -q '^10\.' && return 0
    sleep 0.1
  done
  echo "$s did not answer; log:" >&2; cat "$d/log" >&2; exit 1
}

run() {  # run SERVER MODE: one line of figures
  local s=$1 mode=$2 args
  start "$s"
  case $mode in
    paced) args=(-c 1 -q 100 -Q 2000);;
    max) args=(-c 10 -q 100);;
    *) echo "unknown mode $mode" >&2; exit 1;;
  esac
  perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter -p "$pid" -o "$w/perf" -- \
    taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$w/queries" -l "$secs" "${args[@]}" \
    > "$w/dnsperf" 2>&1
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  local q; q=$(awk '/Queries completed:/ { print $3 }' "$w/dnsperf")
  [ -n "$q" ] && [ "$q" -gt 0 ] || { cat "$w/dnsperf" >&2; exit 1; }
  awk -F, -v q="$q" -v s="$s" -v m="$mode" -v la="$(cut -d' ' -f1 /proc/loadavg)" '
    /task-clock/ { tc = $1 } /context-switches/ { cs = $1 } /sys_enter/ { sc = $1 }
    END { printf "%-5s %-5s queries=%d cpu_us_per_q=%.2f ctxsw_per_q=%.3f syscalls_per_q=%.2f qps_per_core=%.0f load=%s\n",
          m, s, q, tc * 1000 / q, cs / q, sc / q, q / (tc / 1000), la }' "$w/perf"
}

for round in $(seq "${ROUNDS:-1}"); do
  for mode in ${MODES:-paced max}; do
    for s in ${SERVERS:-gdnsd agent}; do run "$s" "$mode"; done
  done
done
