#!/usr/bin/env bash
# Queries/s through redirect + identity vs. the same client/server path without the hooks, in
# one run, and the hooks' cost per packet. Root. Loopback only; BH (TEST-NET-1) blackholed.
#   tests/bench/ebpf_bench.sh BUILD_DIR [QUERIES_PER_ROUND] [ROUNDS] [SOCKETS]
# Each round runs both variants back to back (alternating order) with the same client
# (edns-bench client in a test cgroup, unconnected UDP sockets as musl does) and the same
# responder (tests/bpf/test_responder.cpp):
#   hooks:    responder with BPF (redirect + identity lookup per query); client -> BH:53
#   no hooks: responder --no-bpf, nothing attached;                      client -> 127.0.0.1:PORT
# Per-program cost comes from the kernel's BPF statistics (kernel.bpf_stats_enabled, restored).
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
queries=${2:-200000}
rounds=${3:-5}
sockets=${4:-16}
responder=$build/tests/edns_test_responder
client=$build/tests/ebpf_bench_client
[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
cgmount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
id=$$
parent_rel=edns-bench-$id
parent=$cgmount/$parent_rel
pin=/sys/fs/bpf/edns-bench-$id
bh=192.0.2.$((id % 250 + 1))
tmp=$(mktemp -d)
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
server=""

stop_server() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
  server=""
}
cleanup() {
  set +e
  stop_server
  "$responder" --detach --pin "$pin" >/dev/null 2>&1
  echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
  ip route del blackhole "$bh/32" 2>/dev/null
  rmdir "$parent/client" "$parent" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir -p "$parent/client"
ip route add blackhole "$bh/32"

start_server() { # start_server ARGS...: sets $server and $port
  "$responder" "$@" >"$tmp/server.out" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do
    grep -q '^listening on ' "$tmp/server.out" && break
    sleep 0.05
  done
  port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/server.out")
  [ -n "$port" ] || { cat "$tmp/server.out"; exit 1; }
}
run_client() { # run_client ADDR PORT -> prints qps
  sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$parent/client" \
    "$client" "$1" "$2" "$sockets" "$queries" | sed -n 's/.*qps=\([0-9]*\).*/\1/p'
}

run_hooks() {
  start_server --cgroup "$parent_rel" --pin "$pin" --listen 127.0.0.1 --map client=10.77.0.1
  echo 1 >/proc/sys/kernel/bpf_stats_enabled
  run_client "$bh" 53
  echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
  bpftool -j prog show >"$tmp/progs.json"
  stop_server
  # Keep the per-program statistics of this round (programs are reloaded every round).
  python3 - "$tmp/progs.json" >>"$tmp/prog_stats" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1])):
    if p.get("name", "").startswith("edns_") and p.get("run_cnt"):
        print(p["name"], p["run_cnt"], p["run_time_ns"])
PY
  "$responder" --detach --pin "$pin" >/dev/null
}
run_plain() {
  start_server --no-bpf --listen 127.0.0.1
  run_client 127.0.0.1 "$port"
  stop_server
}

: >"$tmp/prog_stats"
echo "round hooks_qps no_hooks_qps ratio"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then h=$(run_hooks); p=$(run_plain); else p=$(run_plain); h=$(run_hooks); fi
  echo "$r $h $p $(python3 -c "print(f'{$h/$p:.3f}')")" | tee -a "$tmp/rounds"
done
python3 - "$tmp/rounds" "$tmp/prog_stats" "$queries" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
h = [float(r[1]) for r in rows]; p = [float(r[2]) for r in rows]
ratios = [float(r[3]) for r in rows]
print(f"median: hooks {statistics.median(h):.0f} q/s, no hooks {statistics.median(p):.0f} q/s, "
      f"ratio {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")
per_query_ns = (1 / statistics.median(h) - 1 / statistics.median(p)) * 1e9
print(f"end-to-end extra cost per query (one sendmsg, one egress, one recvmsg, one identity lookup): {per_query_ns:.0f} ns")
tot = {}
for line in open(sys.argv[2]):
    name, cnt, ns = line.split()
    c, t = tot.get(name, (0, 0)); tot[name] = (c + int(cnt), t + int(ns))
for name, (cnt, ns) in sorted(tot.items()):
    print(f"  {name:20s} runs {cnt:>9d}  {ns / cnt:6.0f} ns/run (kernel bpf_stats)")
PY
