#!/usr/bin/env bash
# Benchmarks elasticdns-agent beside well-known DNS servers with the shared harness
# (peers.sh, found beside the checkout or named by $PEERS): same zone, same load, one run, medians.
#   tests/bench/agent_peers.sh [BUILD_DIR] [-- extra peers.sh options]
# Default: 3 rounds of the bare recvmmsg responder, gdnsd, knot, unbound and the agent (10,000 containers in its snapshot).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build}; shift || true
[ "${1:-}" = "--" ] && shift
agent=$build/agent/elasticdns-agent
[ -x "$agent" ] || { echo "build $agent first" >&2; exit 1; }
peers=${PEERS:-}
if [ -z "$peers" ]; then  # the shared harness sits next to the project (or its worktrees' parent)
  for p in "$repo/../shared/bench/peers.sh" "$repo/../../shared/bench/peers.sh"; do
    [ -x "$p" ] && { peers=$p; break; }
  done
fi
[ -n "$peers" ] && [ -x "$peers" ] || { echo "peers.sh not found (set PEERS=)" >&2; exit 1; }
exec "$peers" -r "${ROUNDS:-3}" -d "${DURATION:-10}" -s "${SERVERS:-limit-mmsg,gdnsd,knot,unbound-local}" \
  --cmd "bash $repo/tests/bench/agent_run.sh $agent {hosts} {dir} {addr} {port} ${CONTAINERS:-10000}" \
  --port "${AGENT_PORT:-5390}" --name agent "$@"
