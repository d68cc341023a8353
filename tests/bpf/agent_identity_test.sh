#!/usr/bin/env bash
# The real elasticdns-agent with eBPF on real cgroups and network namespaces: versioned answers
# that depend on which container asks, proven by socket identity (the topology gives the test
# containers addresses that are NOT their source addresses, and two host-netns callers share one
# source address), then an agent restart (the pinned programs stay attached; the new agent
# reuses the pinned maps and swaps the pinned links), then
# `elasticdns-agent --detach`; then an agent whose bpf.cgroup appears only after it started.
#   agent_identity_test.sh AGENT MUSL_CLIENT
# Topology: api v1 (10.77.1.1) and api v2 (10.77.2.1); web v1 = ctrA, hostA; web v2 = ctrB,
# hostB. A web v1 caller gets api v1, a web v2 caller api v2, an unknown caller the latest (v2).
set -euo pipefail
agent=$1 musl=$2

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require ip dig getent bpftool
[ -x "$musl" ] || skip "musl client not built (musl-tools)"

unique_names agent ednsag
addr=$net.1
net6=fd00:ed:$(printf %x $((id % 65536)))
addr6=$net6::1
bh6=2001:db8::$(printf %x $((id % 65536 + 1)))
bh=192.0.2.$(((id + 7) % 250 + 1))
nsA=edns-aa-$id nsB=edns-ab-$id
pids=()

cleanup() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -f "$tmp/agent1.yaml" ] && "$agent" --config "$tmp/agent1.yaml" --detach >/dev/null 2>&1
  [ -f "$tmp/agent4.yaml" ] && "$agent" --config "$tmp/agent4.yaml" --detach >/dev/null 2>&1
  rmdir "$parent/late/ctrA-$id" "$parent/late" 2>/dev/null
  remove_all "$nsA" "$nsB"
  exit $rc
}
trap cleanup EXIT INT TERM

mkdir "$parent"
for cg in ctrA-$id ctrB-$id hostA-$id hostB-$id; do mkdir "$parent/$cg"; done
ip link add "$br" type bridge
ip addr add "$addr/24" dev "$br"
ip addr add "$addr6/64" dev "$br" nodad
ip link set "$br" up
ip route add blackhole "$bh/32"
ip -6 route add blackhole "$bh6/128"
i=10
for ns in "$nsA" "$nsB"; do
  i=$((i + 1))
  add_container_netns "$ns" "$i" "w$i-$id"
done

mkdir "$tmp/state"
cat >"$tmp/state/topology.json" <<JSON
{"index": 1,
 "servers": [{"name": "host1", "address": "$addr"}],
 "services": [{"name": "api"}, {"name": "web"}],
 "versions": [{"name": "v1", "generation": 1}, {"name": "v2", "generation": 2}],
 "containers": [
  {"id": "api-1", "service": "api", "version": "v1", "server": "host1", "address": "10.77.1.1"},
  {"id": "api-2", "service": "api", "version": "v2", "server": "host1", "address": "10.77.2.1"},
  {"id": "ctrA-$id", "service": "web", "version": "v1", "server": "host1", "address": "10.77.9.1"},
  {"id": "ctrB-$id", "service": "web", "version": "v2", "server": "host1", "address": "10.77.9.2"},
  {"id": "hostA-$id", "service": "web", "version": "v1", "server": "host1", "address": "10.77.9.3"},
  {"id": "hostB-$id", "service": "web", "version": "v2", "server": "host1", "address": "10.77.9.4"}]}
JSON
write_config() { # write_config FILE PORT [V6]: V6 = also listen on the bridge's IPv6 address
  local listen="\"$addr:$2\""
  [ -n "${3:-}" ] && listen="$listen, \"[$addr6]:$2\""
  cat >"$1" <<YAML
listen: [$listen]
server_name: host1
state_dir: $tmp/state
upstreams: ["$bh:53"]
allow_networks: [$net.0/24, "$net6::/64"]
bpf:
  enabled: true
  cgroup: $parent_rel
  redirect: true
  pin_path: $pin
YAML
}
# start_agent N [WRAPPER...]: the agent with $tmp/agentN.yaml (run by WRAPPER when given), once
# it listens; sets $apid and $aport.
start_agent() {
  local n=$1
  shift
  "$@" "$agent" --config "$tmp/agent$n.yaml" >"$tmp/agent$n.out" 2>&1 &
  apid=$!
  pids+=("$apid")
  wait_for "$tmp/agent$n.out" '^listening on udp '
  aport=$(sed -n 's/^listening on udp .*:\([0-9]*\)$/\1/p' "$tmp/agent$n.out" | head -n 1)
}
write_config "$tmp/agent1.yaml" 0

start_agent 1
a1=$apid port=$aport
grep -q 'ebpf: attached' "$tmp/agent1.out" || fail "agent 1 did not attach eBPF"
echo "agent 1 on $addr:$port"

expect "glibc getent in ctrA (web v1)" "$(run_in "ctrA-$id" "$nsA" -- getent hosts api.cloud66.local | awk '{print $1}')" 10.77.1.1
expect "glibc getent in ctrB (web v2)" "$(run_in "ctrB-$id" "$nsB" -- getent hosts api.cloud66.local | awk '{print $1}')" 10.77.2.1
run_in "ctrA-$id" "$nsA" -- "$musl" api.cloud66.local 20 10.77.1.1 >"$tmp/musl.out" || fail "static musl in ctrA"
echo "ok: static musl in ctrA: $(cat "$tmp/musl.out")"
expect "dig +tcp in ctrA" "$(run_in "ctrA-$id" "$nsA" -- dig +tcp +short +tries=1 +time=2 api.cloud66.local)" 10.77.1.1
expect "dig +tcp in ctrB" "$(run_in "ctrB-$id" "$nsB" -- dig +tcp +short +tries=1 +time=2 api.cloud66.local)" 10.77.2.1
expect "host-netns hostA (web v1)" "$(run_in "hostA-$id" "" -- dig +short +tries=1 +time=2 @"$bh" api.cloud66.local)" 10.77.1.1
expect "host-netns hostB (web v2)" "$(run_in "hostB-$id" "" -- dig +short +tries=1 +time=2 @"$bh" api.cloud66.local)" 10.77.2.1
expect "unknown caller (latest)" "$(dig +short +tries=1 +time=2 @"$addr" -p "$port" api.cloud66.local)" 10.77.2.1

# Restart: the pinned programs stay attached while no agent runs; the new agent (same port)
# reuses the pinned maps and swaps the programs in place. (A restart WITHOUT a gap needs the
# agent's listeners to join the port's SO_REUSEPORT group while the old agent still serves;
# redirect_identity_test.sh proves the eBPF side of that with its responder.)
write_config "$tmp/agent2.yaml" "$port" v6
kill -TERM "$a1"
wait_exit "$a1" || fail "agent 1 exit status $?"
[ "$(bpftool cgroup show "$parent" | tail -n +2 | wc -l)" -eq 9 ] || fail "programs detached when agent 1 stopped"
echo "ok: the 9 programs stay attached while no agent runs"
start_agent 2
a2=$apid
grep -q 'reused pinned maps' "$tmp/agent2.out" || fail "agent 2 did not reuse the pinned maps"
expect "ctrA after restart" "$(run_in "ctrA-$id" "$nsA" -- getent hosts api.cloud66.local | awk '{print $1}')" 10.77.1.1
expect "ctrB after restart" "$(run_in "ctrB-$id" "$nsB" -- getent hosts api.cloud66.local | awk '{print $1}')" 10.77.2.1
# Agent 2 also listens on IPv6: native IPv6 DNS (connect6/sendmsg6/recvmsg6) is redirected to
# it and identified by the IPv6 socket.
grep -q "listening on udp \[$addr6\]:" "$tmp/agent2.out" || fail "agent 2 does not listen on $addr6"
expect "IPv6 UDP in ctrB" "$(run_in "ctrB-$id" "$nsB" -- dig +short +tries=1 +time=2 @"$bh6" api.cloud66.local)" 10.77.2.1
expect "IPv6 TCP in ctrA" "$(run_in "ctrA-$id" "$nsA" -- dig +tcp +short +tries=1 +time=2 @"$bh6" api.cloud66.local)" 10.77.1.1

kill -TERM "$a2"
wait_exit "$a2" || fail "agent 2 exit status $?"

# Without privileges the agent says once what is degraded and answers by source address.
if command -v setpriv >/dev/null; then
  chmod 755 "$tmp" "$tmp/state" && chmod 644 "$tmp/state/topology.json"
  write_config "$tmp/agent3.yaml" 0
  sed -i "s|pin_path: .*|pin_path: $pin-noprivs|" "$tmp/agent3.yaml"
  chmod 644 "$tmp/agent3.yaml"
  start_agent 3 setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all
  a3=$apid
  grep -q 'ebpf: disabled: .*needs root, or CAP_BPF.*Degraded' "$tmp/agent3.out" ||
    fail "no clear degraded message"
  expect "unprivileged agent answers (unknown caller: latest)" \
    "$(dig +short +tries=1 +time=2 @"$addr" -p "$aport" api.cloud66.local)" 10.77.2.1
  kill -TERM "$a3"
  wait_exit "$a3" || fail "agent 3 exit status $?"
  echo "ok: unprivileged: $(grep 'ebpf: disabled' "$tmp/agent3.out" | cut -c1-160)..."
fi
"$agent" --config "$tmp/agent1.yaml" --detach || fail "detach"
[ ! -e "$pin" ] || fail "pins left: $(ls "$pin")"
[ -z "$(bpftool cgroup show "$parent" | tail -n +2)" ] || fail "programs still attached"
echo "ok: elasticdns-agent --detach left no pin and no program"

# A bpf.cgroup that does not exist yet (Docker's systemd driver makes its cgroup-parent slice
# with the first container): the agent answers, says it waits, and attaches once it appears.
late=$parent/late
write_config "$tmp/agent4.yaml" 0
sed -i "s|cgroup: .*|cgroup: $parent_rel/late|; s|pin_path: .*|pin_path: $pin-late|" "$tmp/agent4.yaml"
start_agent 4
a4=$apid
grep -q "ebpf: waiting for bpf.cgroup $late to appear" "$tmp/agent4.out" ||
  fail "agent 4 does not say that it waits for $late"
expect "before the cgroup exists: an unknown caller (latest)" \
  "$(dig +short +tries=1 +time=2 @"$addr" -p "$aport" api.cloud66.local)" 10.77.2.1
mkdir "$late" "$late/ctrA-$id"
wait_for "$tmp/agent4.out" "ebpf: attached to $late"
expect "ctrA below the cgroup that appeared (web v1), redirected and identified" \
  "$(parent=$late run_in "ctrA-$id" "$nsA" -- getent hosts api.cloud66.local | awk '{print $1}')" \
  10.77.1.1
kill -TERM "$a4"
wait_exit "$a4" || fail "agent 4 exit status $?"
"$agent" --config "$tmp/agent4.yaml" --detach || fail "detach agent 4"
[ ! -e "$pin-late" ] || fail "pins left: $(ls "$pin-late")"
rmdir "$late/ctrA-$id" "$late"
echo PASS
