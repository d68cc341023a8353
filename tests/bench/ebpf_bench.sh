#!/usr/bin/env bash
# Queries/s through redirect + identity vs. the same client/server path without the hooks, in
# one run, and the hooks' cost per packet. Root. Loopback only; BH (TEST-NET-1) blackholed.
#   tests/bench/ebpf_bench.sh BUILD_DIR [QUERIES_PER_SLICE] [SLICES] [SOCKETS]
#   AGENT=1 tests/bench/ebpf_bench.sh BUILD_DIR ...   # the real elasticdns-agent as the server
#   FRESH=1 tests/bench/ebpf_bench.sh BUILD_DIR ...   # a new socket per query (glibc's way)
#   GLIBC=1 tests/bench/ebpf_bench.sh BUILD_DIR [LOOKUPS] [SLICES]   # the C library itself as the
#       client: getaddrinfo in a loop (ebpf_glibc_client), against two elasticdns-agents (implies
#       AGENT=1). Each client runs in a mount namespace of its own whose /etc/resolv.conf names
#       BH (hooks: the redirect takes it to its agent) or the no-hooks agent, which listens on
#       127.83.X.1:53 (glibc knows no other port). Defaults 20,000 lookups, 10 slices.
#   FLOOR=1 tests/bench/ebpf_bench.sh BUILD_DIR ...   # + a third variant: programs that do
#       nothing (ebpf_floor.bpf.c) on the same hooks, client -> no-hooks server: the cost of the
#       kernel's hook machinery alone, apart from what our programs do
#   SELFLOOP=1 tests/bench/ebpf_bench.sh BUILD_DIR    # + the client side's cost split without
#       any server or scheduling noise: ebpf_selfloop (one socket that sends to itself) with no
#       programs, with empty programs and with the ElasticDNS programs (redirect BH:53 to
#       itself), in alternating rounds; medians of the paired differences
# Two servers run side by side for the whole run (tests/bpf/test_responder.cpp, or with AGENT=1
# two elasticdns-agents answering api.cloud66.local from a state_dir snapshot):
#   hooks:    with BPF on cgroup <cg2>/edns-bench-PID (redirect + identity lookup per query);
#             the client runs in <cg2>/edns-bench-PID/client and sends to BH:53
#   no hooks: --no-bpf; the same client binary in <cg2>/edns-bench-PID-plain/client (no programs)
#             sends to 127.0.0.1:PORT directly
# The variants run in alternating slices (order reversed every slice), so that the load of
# the machine falls on both alike. Two ratios: throughput (total queries / total wall time of
# each variant; sensitive to other load on the machine) and CPU cost (client + responder CPU
# time per query from /proc/PID/schedstat; the kernel's loopback packet path runs mostly in
# their context), whose inverse ratio is the throughput ratio of a CPU-bound agent.
# Then one more hooks slice with kernel.bpf_stats_enabled=1 (restored) gives each program's
# own cost per run.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
if [ "${GLIBC:-0}" = 1 ]; then
  AGENT=1
  queries=${2:-20000}
  slices=${3:-10}
else
  queries=${2:-100000}
  slices=${3:-20}
fi
sockets=${4:-16}
responder=$build/tests/bpf/edns_test_responder
client=$build/tests/bench/ebpf_bench_client
[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
cgmount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
id=$$
parent_rel=edns-bench-$id
parent=$cgmount/$parent_rel
plain_parent=$cgmount/edns-bench-$id-plain
plain=$plain_parent/client # the same depth as the hooks client's cgroup
floor_parent=$cgmount/edns-bench-$id-floor
floor=$floor_parent/client
floor_pin=/sys/fs/bpf/edns-bench-$id-floor
sl_real_rel=edns-bench-$id-slreal
sl_real=$cgmount/$sl_real_rel
sl_empty=$cgmount/edns-bench-$id-slempty
sl_pin=/sys/fs/bpf/edns-bench-$id-sl
sl_empty_pin=/sys/fs/bpf/edns-bench-$id-slempty
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
  [ -f "$tmp/hooks.yaml" ] && "$build/agent/elasticdns-agent" --config "$tmp/hooks.yaml" --detach >/dev/null 2>&1
  echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
  ip route del blackhole "$bh/32" 2>/dev/null
  rm -rf "$floor_pin" "$sl_empty_pin"
  [ -d "$sl_pin" ] && "$responder" --detach --pin "$sl_pin" >/dev/null 2>&1
  rmdir "$sl_real" "$sl_empty" 2>/dev/null
  rmdir "$parent/client" "$parent" "$plain" "$plain_parent" "$floor" "$floor_parent" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir -p "$parent/client" "$plain"
ip route add blackhole "$bh/32"

start_server() { # start_server NAME ARGS...: sets $port (not in a subshell: $servers is kept)
  local out=$tmp/$1.out
  shift
  if [ "${AGENT:-0}" = 1 ]; then
    "$build/agent/elasticdns-agent" "$@" >"$out" 2>&1 &
  else
    "$responder" "$@" >"$out" 2>&1 &
  fi
  servers+=($!)
  for _ in $(seq 1 600); do # 30 s deadline: the machine may be loaded
    grep -q '^listening on ' "$out" && break
    sleep 0.05
  done
  port=$(sed -n 's/^listening on \(udp \)\{0,1\}[0-9.]*:\([0-9]*\)$/\2/p' "$out" | head -1)
}
server_cpu() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; } # not %d: mawk clamps it at 2^31
run_client() { # run_client CGROUP ADDR PORT SERVER_PID -> "queries seconds client_cpu_ns server_cpu_ns"
  local before after line resolv
  before=$(server_cpu "$4")
  if [ "${GLIBC:-0}" = 1 ]; then # ADDR and PORT come from the resolv.conf of the variant
    resolv=$tmp/resolv-plain.conf
    [ "$1" = "$parent/client" ] && resolv=$tmp/resolv-hooks.conf
    line=$(unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && echo $$ >"$0/cgroup.procs" &&
      exec "$2" api.cloud66.local "$3"' "$1" "$resolv" "$build/tests/bench/ebpf_glibc_client" \
      "$queries" | sed -n 's/^queries=\([0-9]*\) seconds=\([0-9.]*\) failed=0 cpu_ns=\([0-9]*\)/\1 \2 \3/p')
  else
    line=$(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$1" \
      "$client" "$2" "$3" "$sockets" "$queries" ${FRESH:+fresh} |
      sed -n 's/^queries=\([0-9]*\) seconds=\([0-9.]*\).*cpu_ns=\([0-9]*\)/\1 \2 \3/p')
  fi
  [ -n "$line" ] || { echo "a client slice failed (${GLIBC:+a lookup failed or }no figures)" >&2; exit 1; }
  after=$(server_cpu "$4")
  echo "$line" | awk -v s=$((after - before)) '{printf "%.0f %s %.0f %.0f\n", $1, $2, $3, s}'
}

if [ "${AGENT:-0}" = 1 ]; then
  mkdir "$tmp/state-hooks" "$tmp/state-plain"
  cat >"$tmp/state-hooks/topology.json" <<JSON
{"index": 1, "servers": [{"name": "host1", "address": "127.0.0.1"}],
 "services": [{"name": "api"}], "versions": [{"name": "v1", "generation": 1}],
 "containers": [{"id": "api-1", "service": "api", "version": "v1", "server": "host1",
                 "address": "10.77.1.1"}]}
JSON
  cp "$tmp/state-hooks/topology.json" "$tmp/state-plain/"
  # One state_dir each: an agent started on another's state_dir takes its sockets over.
  agent_config() { # agent_config NAME BPF_ENABLED [LISTEN]
    cat >"$tmp/$1.yaml" <<YAML
listen: [${3:-127.0.0.1:0}]
server_name: host1
state_dir: $tmp/state-$1
upstreams: ["$bh:53"]
allow_networks: [127.0.0.0/8]
bpf: {enabled: $2, cgroup: $parent_rel, pin_path: $pin}
YAML
  }
  agent_config hooks true
  if [ "${GLIBC:-0}" = 1 ]; then
    glibc_plain=127.83.$((id % 250)).1
    agent_config plain false "$glibc_plain:53"
    printf 'nameserver %s\noptions attempts:1 timeout:2\n' "$bh" >"$tmp/resolv-hooks.conf"
    printf 'nameserver %s\noptions attempts:1 timeout:2\n' "$glibc_plain" >"$tmp/resolv-plain.conf"
  else
    agent_config plain false
  fi
  start_server hooks --config "$tmp/hooks.yaml"
  hooks_port=$port hooks_pid=${servers[-1]}
  start_server plain --config "$tmp/plain.yaml"
  plain_port=$port plain_pid=${servers[-1]}
else
  start_server hooks --cgroup "$parent_rel" --pin "$pin" --listen 127.0.0.1 --map client=10.77.0.1
  hooks_port=$port hooks_pid=${servers[-1]}
  start_server plain --no-bpf --listen 127.0.0.1
  plain_port=$port plain_pid=${servers[-1]}
fi
[ -n "$hooks_port" ] && [ -n "$plain_port" ] || { cat "$tmp"/*.out; exit 1; }
if [ "${FLOOR:-0}" = 1 ]; then
  mkdir -p "$floor"
  bpftool prog loadall "$build/tests/bench/ebpf_floor.bpf.o" "$floor_pin"
  for hook in egress sendmsg4 recvmsg4; do
    bpftool cgroup attach "$floor_parent" "$hook" pinned "$floor_pin/floor_$hook"
  done
fi

# Warm-up, not counted: the first slices after the servers start cost more CPU per query.
for _ in 1 2; do
  run_client "$parent/client" "$bh" 53 "$hooks_pid" >/dev/null
  run_client "$plain" 127.0.0.1 "$plain_port" "$plain_pid" >/dev/null
  [ "${FLOOR:-0}" = 1 ] && run_client "$floor" 127.0.0.1 "$plain_port" "$plain_pid" >/dev/null
done
echo "slice hooks_qps no_hooks_qps hooks_cpu_ns/q no_hooks_cpu_ns/q"
for s in $(seq 1 "$slices"); do
  f=""
  if [ $((s % 2)) -eq 1 ]; then
    h=$(run_client "$parent/client" "$bh" 53 "$hooks_pid")
    p=$(run_client "$plain" 127.0.0.1 "$plain_port" "$plain_pid")
    [ "${FLOOR:-0}" = 1 ] && f=$(run_client "$floor" 127.0.0.1 "$plain_port" "$plain_pid")
  else
    [ "${FLOOR:-0}" = 1 ] && f=$(run_client "$floor" 127.0.0.1 "$plain_port" "$plain_pid")
    p=$(run_client "$plain" 127.0.0.1 "$plain_port" "$plain_pid")
    h=$(run_client "$parent/client" "$bh" 53 "$hooks_pid")
  fi
  for pid in "${servers[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "server $pid exited"; cat "$tmp"/*.out; exit 1; }
  done
  echo "$h $p $f" >>"$tmp/slices"
  echo "$s $h $p" | awk '{printf "%s %.0f %.0f %.0f %.0f\n", $1, $2/$3, $6/$7, ($4+$5)/$2, ($8+$9)/$6}'
done

# Per-program cost: one more hooks slice with the kernel's BPF statistics on.
echo 1 >/proc/sys/kernel/bpf_stats_enabled
run_client "$parent/client" "$bh" 53 "$hooks_pid" >/dev/null
bpftool -j prog show >"$tmp/progs.json"
echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled

# This run's programs: those attached to its cgroup.
prog_ids=$(bpftool -j cgroup show "$parent" | python3 -c 'import json,sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))')
python3 - "$tmp/slices" "$tmp/progs.json" "$prog_ids" <<'PY'
import json, sys
hq = hs = hc = hsv = pq = ps = pc = psv = fq = fs = fc = 0.0
tr, cr = [], []  # per-slice throughput and CPU ratios
for line in open(sys.argv[1]):
    a = line.split()
    if len(a) not in (8, 12): continue
    tr.append((float(a[0]) / float(a[1])) / (float(a[4]) / float(a[5])))
    cr.append(((float(a[6]) + float(a[7])) / float(a[4])) / ((float(a[2]) + float(a[3])) / float(a[0])))
    hq += float(a[0]); hs += float(a[1]); hc += float(a[2]); hsv += float(a[3])
    pq += float(a[4]); ps += float(a[5]); pc += float(a[6]); psv += float(a[7])
    if len(a) == 12:
        fq += float(a[8]); fs += float(a[9]); fc += float(a[10]) + float(a[11])
hc += hsv; pc += psv
h, p = hq / hs, pq / ps
ch, cp = hc / hq, pc / pq
med = lambda v: sorted(v)[len(v) // 2]
print(f"throughput: hooks {h:.0f} q/s, no hooks {p:.0f} q/s, ratio {h / p:.3f} "
      f"(median of the {len(tr)} slices' ratios {med(tr):.3f})")
print(f"CPU per query (client + responder): hooks {ch:.0f} ns, no hooks {cp:.0f} ns, "
      f"ratio (no hooks / hooks) {cp / ch:.3f} (median of slices {med(cr):.3f}); "
      f"hooks' extra cost {ch - cp:.0f} ns per query")
print(f"  of which client side {(hc - hsv) / hq - (pc - psv) / pq:.0f} ns (hooks {(hc - hsv) / hq:.0f}, "
      f"no hooks {(pc - psv) / pq:.0f}), server side {hsv / hq - psv / pq:.0f} ns "
      f"(hooks {hsv / hq:.0f}, no hooks {psv / pq:.0f})")
if fq:
    fl = fc / fq - cp
    print(f"  hook machinery alone (empty programs on the same hooks): {fl:.0f} ns per query, "
          f"throughput ratio {fq / fs / p:.3f}; the ElasticDNS programs and identity lookup: "
          f"{ch - cp - fl:.0f} ns")
ids = set(int(x) for x in sys.argv[3].split())
for prog in json.load(open(sys.argv[2])):
    if prog.get("id") in ids and prog.get("run_cnt"):
        print(f"  {prog['name']:18s} {prog['run_cnt']:>8d} runs "
              f"{prog['run_time_ns'] / prog['run_cnt']:6.0f} ns/run (kernel bpf_stats)")
PY

# --- Client side without servers or scheduling (SELFLOOP=1).
if [ "${SELFLOOP:-0}" = 1 ]; then
  mkdir -p "$sl_real" "$sl_empty"
  bpftool prog loadall "$build/tests/bench/ebpf_floor.bpf.o" "$sl_empty_pin"
  for hook in egress sendmsg4 recvmsg4; do
    bpftool cgroup attach "$sl_empty" "$hook" pinned "$sl_empty_pin/floor_$hook"
  done
  # The ElasticDNS programs with 127.0.0.1:P as the redirect target: the stand-in responder
  # attaches them (pinned), then exits without detaching and frees P for ebpf_selfloop.
  "$responder" --cgroup "$sl_real_rel" --pin "$sl_pin" --listen 127.0.0.1 >"$tmp/sl.out" 2>&1 &
  sl_responder=$!
  for _ in $(seq 1 600); do grep -q '^listening on ' "$tmp/sl.out" && break; sleep 0.05; done
  sl_port=$(sed -n 's/^listening on \(udp \)\{0,1\}[0-9.]*:\([0-9]*\)$/\2/p' "$tmp/sl.out" | head -1)
  kill -TERM "$sl_responder"
  wait "$sl_responder" 2>/dev/null || true
  [ -n "$sl_port" ] || { cat "$tmp/sl.out"; exit 1; }
  loop() { # loop CGROUP BIND_PORT DST_ADDR DST_PORT -> ns per round trip
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$1" "$build/tests/bench/ebpf_selfloop" "$2" "$3" \
      "$4" 50000 | sed -n 's/^ns_per_round=//p'
  }
  : >"$tmp/selfloop"
  for r in $(seq 1 "${SELFLOOP_ROUNDS:-60}"); do
    echo "$(loop "$plain" 0 127.0.0.1 0) $(loop "$sl_empty" 0 127.0.0.1 0)" \
      "$(loop "$sl_real" "$sl_port" "$bh" 53)" >>"$tmp/selfloop"
  done
  python3 - "$tmp/selfloop" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
none, empty, real = (st.median(r[i] for r in rows) for i in range(3))
machinery = st.median(r[1] - r[0] for r in rows)
ours = st.median(r[2] - r[1] for r in rows)
print(f"client side, one socket sending to itself ({len(rows)} rounds of 50,000; medians): "
      f"no programs {none:.0f} ns per round trip, empty programs {empty:.0f}, ElasticDNS {real:.0f}")
print(f"  hook machinery (empty - none) {machinery:.0f} ns; the ElasticDNS programs' own work "
      f"(ElasticDNS - empty) {ours:.0f} ns; together {machinery + ours:.0f} ns per query")
# Noise on a VM only adds time: the fastest round of each variant is the steadiest estimate.
lo = [min(r[i] for r in rows) for i in range(3)]
print(f"  fastest rounds: no programs {lo[0]:.0f}, empty {lo[1]:.0f}, ElasticDNS {lo[2]:.0f} ns: "
      f"machinery {lo[1] - lo[0]:.0f} ns, ElasticDNS programs {lo[2] - lo[1]:.0f} ns")
PY
fi
