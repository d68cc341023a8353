#!/usr/bin/env bash
# Runs every benchmark of the project once, one after the other (each prints its own figures):
#   central     acknowledged writes/s, fan-out to 1,000 watchers (p50/p99), RSS at 100k containers
#   propagation write at central → every agent answers accordingly (p50/p99 over 100 changes)
#   ebpf        queries/s through redirect + identity vs. without the hooks (real agent)
#   agent       the agent beside gdnsd, knot and unbound in the shared DNS benchmark harness
# Root (namespaces, cgroups, BPF). Loopback and the benchmarks' own namespaces only.
#   scripts/bench.sh [central|propagation|ebpf|agent ...]    default: all
# Run it on an otherwise idle machine: the figures are only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
bash scripts/install-deps.sh >/dev/null
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" >/dev/null
which=("$@")
[ ${#which[@]} -gt 0 ] || which=(central propagation ebpf agent)
for b in "${which[@]}"; do
  echo "=== $b ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
  case "$b" in
    central) "$build/tests/bench/central_bench" "$build/central/elasticdns-central" ;;
    propagation)
      /usr/bin/python3 tests/bench/propagation.py --central "$build/central/elasticdns-central" \
        --agent "$build/agent/elasticdns-agent" ;;
    ebpf)
      FLOOR=1 AGENT=1 bash tests/bench/ebpf_bench.sh "$build" 300000 20 16
      FRESH=1 AGENT=1 bash tests/bench/ebpf_bench.sh "$build" 100000 10 16 ;;
    agent) bash tests/bench/agent_peers.sh "$build" ;;
    *) echo "unknown benchmark '$b' (central, propagation, ebpf, agent)" >&2; exit 2 ;;
  esac
done
