#!/usr/bin/env bash
# The agent as a peers.sh server: builds the snapshot from the harness's hosts file, then execs
# the agent on ADDR:PORT with no central (it serves the snapshot in its state_dir).
#   agent_run.sh AGENT_BINARY HOSTS_FILE DIR ADDR PORT [CONTAINERS]
# AGENT_WRAPPER: a command the agent runs under (e.g. valgrind; agent_callgrind.sh).
set -euo pipefail
agent=$1 hosts=$2 dir=$3 addr=$4 port=$5 containers=${6:-10000}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/state"
python3 "$here/agent_topology.py" "$hosts" "$dir/state" --containers "$containers" >&2
cat > "$dir/agent.yaml" <<YAML
listen: ["$addr:$port"]
state_dir: $dir/state
server_name: bench
upstreams: []
allow_networks: [127.0.0.0/8]
YAML
exec ${AGENT_WRAPPER:-} "$agent" --config "$dir/agent.yaml"
