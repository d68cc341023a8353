#!/usr/bin/env bash
# Queries/s through redirect + identity vs. the same client/server path without the hooks, in
# one run, and the hooks' cost per packet. Root. Loopback only; BH (TEST-NET-1) blackholed.
#   tests/bench/ebpf_bench.sh BUILD_DIR [QUERIES_PER_SLICE] [SLICES] [SOCKETS]
# Two responders (tests/bpf/test_responder.cpp) run side by side for the whole run:
#   hooks:    with BPF on cgroup <cg2>/edns-bench-PID (redirect + identity lookup per query);
#             the client runs in <cg2>/edns-bench-PID/client and sends to BH:53
#   no hooks: --no-bpf; the same client binary in <cg2>/edns-bench-PID-plain (no programs)
#             sends to 127.0.0.1:PORT directly
# The two variants run in alternating slices (order swapped every slice), so that the load of
# the machine falls on both alike; the ratio is total queries / total time of each variant.
# Then one more hooks slice with kernel.bpf_stats_enabled=1 (restored) gives each program's
# own cost per run.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
queries=${2:-100000}
slices=${3:-20}
sockets=${4:-16}
responder=$build/tests/edns_test_responder
client=$build/tests/ebpf_bench_client
[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
cgmount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
id=$$
parent_rel=edns-bench-$id
parent=$cgmount/$parent_rel
plain=$cgmount/edns-bench-$id-plain
pin=/sys/fs/bpf/edns-bench-$id
bh=192.0.2.$((id % 250 + 1))
tmp=$(mktemp -d)
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
servers=()

cleanup() {
  set +e
  for p in "${servers[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${servers[@]}"; do wait "$p" 2>/dev/null; done
  "$responder" --detach --pin "$pin" >/dev/null 2>&1
  echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
  ip route del blackhole "$bh/32" 2>/dev/null
  rmdir "$parent/client" "$parent" "$plain" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir -p "$parent/client" "$plain"
ip route add blackhole "$bh/32"

start_server() { # start_server NAME ARGS...: prints the port
  local out=$tmp/$1.out
  shift
  "$responder" "$@" >"$out" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 600); do # 30 s deadline: the machine may be loaded
    grep -q '^listening on ' "$out" && break
    sleep 0.05
  done
  sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out"
}
run_client() { # run_client CGROUP ADDR PORT -> "queries seconds"
  sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$1" \
    "$client" "$2" "$3" "$sockets" "$queries" |
    sed -n 's/^queries=\([0-9]*\) seconds=\([0-9.]*\).*/\1 \2/p'
}

hooks_port=$(start_server hooks --cgroup "$parent_rel" --pin "$pin" --listen 127.0.0.1 \
  --map client=10.77.0.1)
plain_port=$(start_server plain --no-bpf --listen 127.0.0.1)
[ -n "$hooks_port" ] && [ -n "$plain_port" ] || { cat "$tmp"/*.out; exit 1; }

echo "slice hooks_qps no_hooks_qps"
for s in $(seq 1 "$slices"); do
  if [ $((s % 2)) -eq 1 ]; then
    h=$(run_client "$parent/client" "$bh" 53); p=$(run_client "$plain" 127.0.0.1 "$plain_port")
  else
    p=$(run_client "$plain" 127.0.0.1 "$plain_port"); h=$(run_client "$parent/client" "$bh" 53)
  fi
  echo "$h $p" >>"$tmp/slices"
  echo "$s $(echo "$h" | awk '{printf "%.0f", $1 / $2}') $(echo "$p" | awk '{printf "%.0f", $1 / $2}')"
done

# Per-program cost: one more hooks slice with the kernel's BPF statistics on.
echo 1 >/proc/sys/kernel/bpf_stats_enabled
run_client "$parent/client" "$bh" 53 >/dev/null
bpftool -j prog show >"$tmp/progs.json"
echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled

python3 - "$tmp/slices" "$tmp/progs.json" <<'PY'
import json, sys
hq = hs = pq = ps = 0.0
for line in open(sys.argv[1]):
    a = line.split()
    if len(a) != 4: continue
    hq += float(a[0]); hs += float(a[1]); pq += float(a[2]); ps += float(a[3])
h, p = hq / hs, pq / ps
print(f"total: hooks {h:.0f} q/s, no hooks {p:.0f} q/s, ratio {h / p:.3f}")
print(f"extra time per query (sendmsg4 + egress + recvmsg4 + identity lookup, end to end): "
      f"{(1 / h - 1 / p) * 1e9:.0f} ns")
for prog in json.load(open(sys.argv[2])):
    if prog.get("name", "").startswith("edns_") and prog.get("run_cnt"):
        print(f"  {prog['name']:18s} {prog['run_cnt']:>8d} runs "
              f"{prog['run_time_ns'] / prog['run_cnt']:6.0f} ns/run (kernel bpf_stats)")
PY
