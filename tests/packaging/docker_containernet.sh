#!/usr/bin/env bash
# pkg.docker_containernet: ContainerNet's Docker network (agent/README.md, "ContainerNet")
# against a real dockerd, a real elasticdns-central leasing subnets and the agent running
# wireguard-go, all in a network namespace of their own with only a loopback, a veth pair
# holding the server's address and Docker's bridges (nothing can leave the machine). The image is
# imported from a local tarball (busybox-static); no registry is used.
#   1. the agent creates the Docker network `containernet`: the leased subnet, gateway .1, the
#      bridge named by containernet.bridge with the ContainerNet MTU, our label
#   2. a labelled container on it (and on the default bridge) gets an address in the subnet,
#      and central has it registered with that address (the preferred network)
#   3. the agent restarted adopts the network: same id, no error
#   4. a network `containernet` with our label, no containers and a stale subnet is removed and
#      created again with the lease
#   5. a network `containernet` of someone else with another subnet: one clear error line, the
#      network is left alone
# Needs root, dockerd, wireguard-go, busybox-static, curl, python3, ping (scripts/install-deps.sh);
# exits 77 without.
#   docker_containernet.sh <build dir>
set -euo pipefail
build=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for tool in dockerd docker containerd runc wireguard-go curl python3 nsenter ip ping; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (scripts/install-deps.sh)"; exit 77; }
done
[ -x /bin/busybox ] || { echo "SKIP: busybox-static missing"; exit 77; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun for wireguard-go"; exit 77; }

tmp=$(mktemp -d /tmp/edns-dc.XXXXXX)  # short: unix socket paths live below it
ns=edns-dc-$$
sock=$tmp/docker.sock
wg_if=ecn$$
bridge=cn$$
pids=()
dockerd_pid=
agent_pid=
fail() {
  echo "FAIL: $*"
  echo "--- agent log"; grep -v '[│┌└]' "$tmp/agent.err" 2>/dev/null | tail -30 || true
  local m
  m=$(sed -n 's/^listening on metrics //p' "$tmp/agent.out" 2>/dev/null)
  [ -n "$m" ] && in_ns curl -s "http://$m/metrics" | grep -E '^elasticdns_(containernet|docker)_'
  echo "--- central log"; tail -10 "$tmp/central.err" 2>/dev/null || true
  echo "--- dockerd log"; grep -v 'level=info' "$tmp/dockerd.log" 2>/dev/null | tail -10 || true
  exit 1
}
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  # The agent stops its wireguard-go; if it could not, its PID file names it.
  if [ -s "$tmp/containernet-wireguard-go.pid" ]; then
    wg_pid=$(cat "$tmp/containernet-wireguard-go.pid")
    [ "$(cat "/proc/$wg_pid/comm" 2>/dev/null)" = wireguard-go ] && kill "$wg_pid"
  fi
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    ids=$(docker -H "unix://$sock" ps -aq 2>/dev/null)
    [ -n "$ids" ] && docker -H "unix://$sock" rm -f $ids >/dev/null 2>&1
    docker -H "unix://$sock" network rm containernet >/dev/null 2>&1
    kill "$dockerd_pid"
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
  fi
  grep -o " $tmp[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
in_ns() { nsenter --net="/run/netns/$ns" "$@"; }
# For `bg_in_ns ... &`: exec, so that $! is the daemon itself (nsenter execs it too).
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
# The server's address (the WireGuard endpoint; its link's MTU 1500 gives the auto MTU 1440) on
# a veth pair with both ends in the namespace (no dummy module needed).
ip -n "$ns" link add d0 type veth peer name d1
ip -n "$ns" addr add 10.212.0.1/24 dev d0
ip -n "$ns" link set d0 up
ip -n "$ns" link set d1 up

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

# Central leasing /24s out of 10.77.128.0/17, with per-server agent tokens.
echo "admin-0123456789abcdef0123456789" >"$tmp/admin.token"
echo "reader-0123456789abcdef012345678" >"$tmp/agent.token"
echo "host1-0123456789abcdef0123456789" >"$tmp/host1.token"
printf '%s host1\n' "$(cat "$tmp/host1.token")" >"$tmp/agent-tokens"
cat >"$tmp/central.yml" <<YAML
containernet:
  cluster_cidr: 10.77.128.0/17
  subnet_prefix: 24
YAML
mkdir -p "$tmp/central"
bg_in_ns "$build/central/elasticdns-central" --config "$tmp/central.yml" --listen 127.0.0.1:0 \
  --data-dir "$tmp/central" --admin-token-file "$tmp/admin.token" \
  --agent-token-file "$tmp/agent.token" --agent-tokens-file "$tmp/agent-tokens" \
  >"$tmp/central.out" 2>"$tmp/central.err" &
pids+=($!)
wait_for 20 grep -q '^listening on' "$tmp/central.out" || fail "central did not start"
central=http://$(sed -n 's/^listening on //p' "$tmp/central.out" | head -1)
ctl() { in_ns "$build/central/elasticdnsctl" --url "$central" --token-file "$tmp/admin.token" "$@"; }
ctl server put host1 --address 10.212.0.1 >/dev/null
ctl service put api >/dev/null
ctl topology >"$tmp/topo.json"
subnet=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["topology"]
print(next(s.get("subnet","") for s in t["servers"] if s["name"]=="host1"))' "$tmp/topo.json")
case "$subnet" in 10.77.1[2-9][0-9].0/24 | 10.77.2[0-5][0-9].0/24) ;; *) fail "no lease: '$subnet'" ;; esac
gateway=${subnet%.0/24}.1
echo "ok: central leased $subnet to host1"

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
containernet:
  enabled: true
  interface: $wg_if
  key_file: $tmp/containernet.key
  implementation: userspace
  bridge: $bridge
YAML
start_agent() {
  : >"$tmp/agent.err"
  bg_in_ns "$build/agent/elasticdns-agent" --config "$tmp/agent.yml" >"$tmp/agent.out" 2>>"$tmp/agent.err" &
  agent_pid=$!
  pids+=("$agent_pid")
  wait_for 20 grep -q '^listening on udp' "$tmp/agent.out" || fail "agent did not start"
}
stop_agent() {
  kill "$agent_pid"
  wait "$agent_pid" || true
  kill -0 "$agent_pid" 2>/dev/null && fail "the agent did not stop"
  return 0
}
# net_is 'python condition on n' : n = docker network inspect containernet (one object).
net_is() {
  dk network inspect containernet >"$tmp/net.json" 2>/dev/null || return 1
  python3 - "$tmp/net.json" "$1" <<'PY'
import json, sys
n = json.load(open(sys.argv[1]))[0]
cfg = n["IPAM"]["Config"]
opt = n.get("Options") or {}
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}
expect_net() {  # expect_net SECONDS 'condition' 'what'
  wait_for "$1" net_is "$2" || { echo "network:"; cat "$tmp/net.json" 2>/dev/null; fail "$3"; }
  echo "ok: $3"
}
net_id() { dk network inspect -f '{{.Id}}' containernet; }
# check 'python condition on c' : c = {id: container} from central's topology.
check() {
  ctl topology >"$tmp/topo.json" || return 1
  python3 - "$tmp/topo.json" "$1" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
c = {x["id"]: x for x in t["topology"]["containers"]}
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# 1. created
start_agent
expect_net 60 "cfg == [{'Subnet': '$subnet', 'Gateway': '$gateway'}] and n['Driver'] == 'bridge' \
  and opt.get('com.docker.network.bridge.name') == '$bridge' \
  and opt.get('com.docker.network.driver.mtu') == '1440' \
  and (n.get('Labels') or {}).get('com.cloud66.elasticdns.containernet') == '1'" \
  "the agent created network containernet: $subnet, gateway $gateway, bridge $bridge, MTU 1440, our label"
grep -q "containernet: created Docker network containernet" "$tmp/agent.err" ||
  fail "no 'created' log line"
wait_for 20 sh -c "nsenter --net=/run/netns/$ns ip -4 addr show dev $bridge | grep -qF 'inet $gateway/24'" ||
  fail "the bridge $bridge has no $gateway/24"
in_ns ip link show dev "$bridge" | grep -q ' mtu 1440 ' || fail "bridge MTU: $(in_ns ip link show dev "$bridge")"
in_ns ip link show dev "$wg_if" | grep -q ' mtu 1440 ' || fail "$wg_if MTU: $(in_ns ip link show dev "$wg_if")"
echo "ok: $bridge has $gateway/24, MTU 1440 on $bridge and $wg_if"
grep -q "containernet: reconcile failed" "$tmp/agent.err" && fail "a reconcile failed"
id1=$(net_id)

# 2. a container on it is registered with its ContainerNet address (preferred over `bridge`)
dk run -d --pull never --name edns-a --network containernet \
  --label elasticdns.service=api --label elasticdns.version=v1 edns-test:1 /bin/sleep 3600 >/dev/null
dk network connect bridge edns-a
A=$(dk inspect -f '{{.Id}}' edns-a)
A_IP=$(dk inspect -f '{{(index .NetworkSettings.Networks "containernet").IPAddress}}' edns-a)
python3 -c 'import ipaddress,sys; sys.exit(0 if ipaddress.ip_address(sys.argv[1]) in ipaddress.ip_network(sys.argv[2]) and sys.argv[1] != sys.argv[3] else 1)' \
  "$A_IP" "$subnet" "$gateway" || fail "container address $A_IP not a host of $subnet"
wait_for 30 check "c.get('$A', {}).get('address') == '$A_IP' and c['$A']['server'] == 'host1'" ||
  { cat "$tmp/topo.json"; fail "central does not have A with $A_IP"; }
echo "ok: container on containernet got $A_IP, registered with central with that address"
in_ns ping -c 1 -W 2 "$A_IP" >/dev/null || fail "the host cannot reach the container at $A_IP"
echo "ok: the host reaches the container over $bridge"

# 3. restart: adopted
stop_agent
start_agent
wait_for 30 grep -q "containernet: adopted Docker network containernet" "$tmp/agent.err" ||
  fail "the restarted agent did not adopt the network"
sleep 2
[ "$(net_id)" = "$id1" ] || fail "network id changed: $id1 -> $(net_id)"
grep -E "containernet: .*(Left alone|retrying)" "$tmp/agent.err" && fail "an error adopting the network"
grep -q "containernet: reconcile failed" "$tmp/agent.err" && fail "a reconcile failed after restart"
echo "ok: the restarted agent adopted network containernet (same id ${id1:0:12}, no error)"

# 4. ours, no containers, stale subnet: recreated
stop_agent
dk rm -f edns-a >/dev/null
dk network rm containernet >/dev/null
dk network create --subnet 10.77.255.0/24 --label com.cloud66.elasticdns.containernet=1 \
  -o com.docker.network.bridge.name="$bridge" containernet >/dev/null
id2=$(net_id)
start_agent
expect_net 30 "cfg == [{'Subnet': '$subnet', 'Gateway': '$gateway'}] and n['Id'] != '$id2'" \
  "our stale network (10.77.255.0/24, no containers) was removed and created again with $subnet"

# 5. someone else's network with another subnet: one error line, left alone
stop_agent
dk network rm containernet >/dev/null
dk network create --subnet 10.215.0.0/24 containernet >/dev/null
id3=$(net_id)
start_agent
wait_for 30 grep -q "containernet: Docker network containernet (${id3:0:12}) has driver bridge, subnet 10.215.0.0/24 .*ContainerNet needs driver bridge, subnet $subnet gateway $gateway" "$tmp/agent.err" ||
  fail "no clear error line for the mismatching network"
grep "Docker network containernet (${id3:0:12})" "$tmp/agent.err"
sleep 3
[ "$(net_id)" = "$id3" ] || fail "the mismatching network was replaced"
net_is "cfg[0]['Subnet'] == '10.215.0.0/24'" || fail "the mismatching network was changed"
[ "$(grep -c "Docker network containernet (${id3:0:12}) has" "$tmp/agent.err")" = 1 ] ||
  fail "the error line is repeated"
echo "ok: a foreign network containernet with 10.215.0.0/24: one error line, left alone"
stop_agent
echo "PASS: ContainerNet's Docker network against dockerd $(dk version -f '{{.Server.Version}}')"
