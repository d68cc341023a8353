#!/usr/bin/env bash
# pkg.docker_discovery: the agent's Docker discovery against a real dockerd (Debian's docker.io)
# and a real elasticdns-central, all in a network namespace of their own that has only a
# loopback interface and Docker's bridges (nothing can leave the machine). The image is
# imported from a local tarball (busybox-static); no registry is used.
#   1. before the agent starts: labelled container A runs, labelled S is stopped, U has no
#      labels; central holds a stale container of this server and one of another server
#   2. agent starts → reconcile: A registered (running, address on the preferred network),
#      stale one removed, S and U ignored, the other server's container untouched; the agent
#      answers api.cloud66.local with A's address
#   3. docker run B → running; docker stop B → draining (left out of answers); docker rm B → gone
#   4. agent stopped; A stopped, C started meanwhile (central unchanged); agent restarted →
#      A draining, C running; docker rm A → A gone
#   5. the agent's per-server token cannot write another server's container (403)
# Needs root, dockerd, busybox-static, curl, dig (scripts/install-deps.sh); exits 77 without.
#   docker_discovery.sh <build dir>
set -euo pipefail
build=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for tool in dockerd docker containerd runc curl dig python3 nsenter; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (scripts/install-deps.sh)"; exit 77; }
done
[ -x /bin/busybox ] || { echo "SKIP: busybox-static missing"; exit 77; }

tmp=$(mktemp -d /tmp/edns-dk.XXXXXX)  # short: unix socket paths live below it
ns=edns-dk-$$
sock=$tmp/docker.sock
pids=()
dockerd_pid=
fail() {
  echo "FAIL: $*"
  echo "--- agent log"; tail -30 "$tmp/agent.err" 2>/dev/null || true
  echo "--- central log"; tail -10 "$tmp/central.err" 2>/dev/null || true
  echo "--- dockerd log"; grep -v 'level=info' "$tmp/dockerd.log" 2>/dev/null | tail -10 || true
  exit 1
}
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    ids=$(docker -H "unix://$sock" ps -aq 2>/dev/null)
    [ -n "$ids" ] && docker -H "unix://$sock" rm -f $ids >/dev/null 2>&1
    kill "$dockerd_pid"
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$dockerd_pid" 2>/dev/null
  fi
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  grep -o " $tmp[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
in_ns() { nsenter --net="/run/netns/$ns" "$@"; }
# For `bg_in_ns ... &`: exec, so that $! is the daemon itself (nsenter execs it too), not a
# subshell, and cleanup() kills the right process.
bg_in_ns() { exec nsenter --net="/run/netns/$ns" "$@"; }
# Polls a command until it succeeds, for at most $1 seconds.
wait_for() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
dk() { docker -H "unix://$sock" "$@"; }

ip netns add "$ns"
ip -n "$ns" link set lo up

# dockerd through nsenter (not `ip netns exec`, which remounts /sys and hides the cgroups).
bg_in_ns dockerd --data-root "$tmp/data" --exec-root "$tmp/x" --pidfile "$tmp/docker.pid" \
  -H "unix://$sock" --containerd-namespace "edns-$$" --containerd-plugins-namespace "edns-$$-p" \
  --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
  --bip 10.213.0.1/24 >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
wait_for 60 curl -sf --unix-socket "$sock" http://docker/_ping ||
  fail "dockerd did not start (is another container runtime in the way?)"
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/"
ln -s busybox "$tmp/rootfs/bin/sh"
ln -s busybox "$tmp/rootfs/bin/sleep"
tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
dk import "$tmp/rootfs.tar" edns-test:1 >/dev/null
dk network create --subnet 10.214.0.0/24 appnet >/dev/null
run() {  # run NAME [labels...]: a sleeping container on appnet and the default bridge
  local name=$1
  shift
  dk run -d --pull never --name "$name" --network appnet "$@" edns-test:1 /bin/sleep 3600 >/dev/null
  dk network connect bridge "$name"
}
ip_of() { dk inspect -f '{{(index .NetworkSettings.Networks "appnet").IPAddress}}' "$1"; }
id_of() { dk inspect -f '{{.Id}}' "$1"; }
run edns-a --label elasticdns.service=api --label elasticdns.version=v1
run edns-s --label elasticdns.service=api --label elasticdns.version=v1
dk stop -t 1 edns-s >/dev/null
run edns-u
A=$(id_of edns-a) A_IP=$(ip_of edns-a) S=$(id_of edns-s) U=$(id_of edns-u)

# Central, with an admin token, the shared agent token and per-server agent tokens.
echo "admin-0123456789abcdef0123456789" >"$tmp/admin.token"
echo "reader-0123456789abcdef012345678" >"$tmp/agent.token"
echo "host1-0123456789abcdef0123456789" >"$tmp/host1.token"
printf '%s host1\n%s host2\n' "$(cat "$tmp/host1.token")" "host2-0123456789abcdef0123456789" \
  >"$tmp/agent-tokens"
mkdir -p "$tmp/central"
bg_in_ns "$build/central/elasticdns-central" --listen 127.0.0.1:0 --data-dir "$tmp/central" \
  --admin-token-file "$tmp/admin.token" --agent-token-file "$tmp/agent.token" \
  --agent-tokens-file "$tmp/agent-tokens" >"$tmp/central.out" 2>"$tmp/central.err" &
pids+=($!)
wait_for 20 grep -q '^listening on' "$tmp/central.out" || fail "central did not start"
central=http://$(sed -n 's/^listening on //p' "$tmp/central.out" | head -1)
ctl() { in_ns "$build/central/elasticdnsctl" --url "$central" --token-file "$tmp/admin.token" "$@"; }
ctl server put host1 --address 10.213.0.1 >/dev/null
ctl server put host2 --address 10.213.0.2 >/dev/null
ctl service put api >/dev/null
ctl container put stale1 --service api --version v1 --server host1 --address 10.99.0.1 >/dev/null
ctl container put other1 --service api --version v1 --server host2 --address 10.99.0.2 >/dev/null

# check 'python condition on c' : c = {id: container} from central's topology.
check() {
  ctl topology >"$tmp/topology.json" || return 1
  python3 - "$tmp/topology.json" "$1" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
c = {x["id"]: x for x in t["topology"]["containers"]}
state = lambda i: c.get(i, {}).get("state", "running" if i in c else None)
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}
expect() {  # expect SECONDS 'condition' 'what'
  wait_for "$1" check "$2" || { echo "topology:"; cat "$tmp/topology.json"; echo; fail "$3"; }
  echo "ok: $3"
}

cat >"$tmp/agent.yml" <<YAML
listen: [127.0.0.1:0]
server_name: host1
central:
  urls: [$central]
  token_file: $tmp/host1.token
state_dir: $tmp
metrics_listen: 127.0.0.1:0
docker:
  enabled: true
  socket: $sock
  networks: [appnet]
YAML
start_agent() {
  bg_in_ns "$build/agent/elasticdns-agent" --config "$tmp/agent.yml" >"$tmp/agent.out" 2>>"$tmp/agent.err" &
  agent_pid=$!
  pids+=("$agent_pid")
  wait_for 20 grep -q '^listening on udp' "$tmp/agent.out" || fail "agent did not start"
  agent_port=$(sed -n 's/^listening on udp 127.0.0.1://p' "$tmp/agent.out")
}
answer() { in_ns dig @127.0.0.1 -p "$agent_port" api.cloud66.local A +short +tries=1 +time=1; }
answers_with() { answer | grep -qxF "$1"; }
answers_without() { ! answer | grep -qxF "$1"; }

start_agent
expect 30 "state('$A') == 'running' and c['$A']['address'] == '$A_IP' and c['$A']['server'] == 'host1' \
  and 'stale1' not in c and '$S' not in c and '$U' not in c and state('other1') == 'running'" \
  "reconcile at start: A registered on appnet, stale container removed, S/U ignored, host2 untouched"
wait_for 30 answers_with "$A_IP" || fail "the agent does not answer api.cloud66.local with A ($A_IP)"
echo "ok: the agent answers api.cloud66.local with A's address"

run edns-b --label elasticdns.service=api --label elasticdns.version=v2
B=$(id_of edns-b) B_IP=$(ip_of edns-b)
expect 20 "state('$B') == 'running' and c['$B']['address'] == '$B_IP' and c['$B']['version'] == 'v2'" \
  "docker run: B registered running"
dk stop -t 1 edns-b >/dev/null
expect 20 "state('$B') == 'draining'" "docker stop: B draining"
wait_for 30 answers_without "$B_IP" || fail "a draining container is still answered"
dk rm edns-b >/dev/null
expect 20 "'$B' not in c" "docker rm: B removed"

kill "$agent_pid"
wait "$agent_pid" || true
kill -0 "$agent_pid" 2>/dev/null && fail "the agent did not stop"
dk stop -t 1 edns-a >/dev/null
run edns-c --label elasticdns.service=api --label elasticdns.version=v3
C=$(id_of edns-c) C_IP=$(ip_of edns-c)
check "state('$A') == 'running' and '$C' not in c" ||
  fail "central changed while the agent was down: no agent should have written"
start_agent
expect 30 "state('$A') == 'draining' and state('$C') == 'running' and c['$C']['address'] == '$C_IP'" \
  "reconcile after the agent was down: A draining, C running"
dk rm edns-a >/dev/null
expect 20 "'$A' not in c" "docker rm of a container stopped while the agent was down: A removed"

status=$(in_ns curl -s -o /dev/null -w '%{http_code}' -X PUT \
  -H "Authorization: Bearer $(cat "$tmp/host1.token")" -H 'Content-Type: application/json' \
  --data '{"service":"api","version":"v1","server":"host2","address":"10.99.0.9"}' \
  "$central/v1/containers/intruder")
[ "$status" = 403 ] || fail "host1's token wrote a container of host2 (status $status)"
status=$(in_ns curl -s -o /dev/null -w '%{http_code}' -X DELETE \
  -H "Authorization: Bearer $(cat "$tmp/host1.token")" "$central/v1/containers/other1")
[ "$status" = 403 ] || fail "host1's token deleted a container of host2 (status $status)"
echo "ok: host1's token cannot write host2's containers"
metrics=$(in_ns curl -s "http://$(sed -n 's/^listening on metrics //p' "$tmp/agent.out")/metrics")
grep -qx 'elasticdns_docker_connected 1' <<<"$metrics" || fail "metrics: not connected: $metrics"
grep -q '^elasticdns_docker_reconciles_total [1-9]' <<<"$metrics" || fail "metrics: no reconcile"
grep -q '^elasticdns_docker_writes_total{result="ok"} [3-9]' <<<"$metrics" ||
  fail "metrics: the restarted agent should have written 3 times: $metrics"
grep -q '^elasticdns_docker_events_total [1-9]' <<<"$metrics" || fail "metrics: no event counted"
grep '^elasticdns_docker' <<<"$metrics"
echo "PASS: Docker discovery against dockerd $(dk version -f '{{.Server.Version}}')"
