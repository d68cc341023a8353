#!/usr/bin/env bash
# Central on SQLite and on a 3-member etcd cluster (Debian's etcd-server on loopback), one
# after the other, with the same central_bench load: acknowledged writes/s, fan-out to N
# long-poll watchers, RSS at N containers.
#   tests/bench/central_etcd_bench.sh BUILD_DIR [central_bench flags, e.g. --watchers 10000]
# Each etcd member has its own data directory under a temporary directory, removed at the end
# with the members (stopped by PID). Only 127.0.0.1 is used.
set -euo pipefail
build=${1:?usage: central_etcd_bench.sh BUILD_DIR [central_bench flags]}
shift
central="$build/central/elasticdns-central"
bench="$build/tests/bench/central_bench"
command -v etcd >/dev/null || { echo "etcd is not installed (scripts/install-deps.sh)"; exit 2; }

dir=$(mktemp -d /tmp/edns-etcd-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# Free loopback ports: three client and three peer ports.
read -r -a ports <<<"$(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
cluster="m1=http://127.0.0.1:${ports[3]},m2=http://127.0.0.1:${ports[4]},m3=http://127.0.0.1:${ports[5]}"
endpoints="http://127.0.0.1:${ports[0]},http://127.0.0.1:${ports[1]},http://127.0.0.1:${ports[2]}"
for i in 0 1 2; do
  name="m$((i + 1))"
  etcd --name "$name" --data-dir "$dir/$name" \
    --listen-client-urls "http://127.0.0.1:${ports[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${ports[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" \
    --initial-cluster "$cluster" --initial-cluster-token edns-bench --max-txn-ops 10000 \
    --auto-compaction-mode revision --auto-compaction-retention 100000 \
    >"$dir/$name.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 100); do
  curl -sf -X POST "http://127.0.0.1:${ports[0]}/v3/kv/range" -d '{"key":"AA=="}' >/dev/null &&
    break
  sleep 0.1
done

echo "== SQLite (durability full)"
"$bench" "$central" "$@"
echo "== etcd, 3 members on loopback"
"$bench" "$central" "$@" --etcd "$endpoints"
