#!/usr/bin/env bash
# Hot handover of the real elasticdns-agent (agent/ops/handover.hpp), outside systemd: a container
# (own cgroup and netns, resolv.conf naming a blackholed address, eBPF redirect to the agent)
# queries api.cloud66.local without pause over UDP and TCP while a new agent process is started
# three times; each takes the running one's sockets (every worker's UDP socket, the TCP
# listeners, the metrics listener) over the control socket in state_dir, and the old one exits
# by itself with status 0. Not one query may fail, and every generation must have answered.
# The third new agent has another listen set: the shared address is adopted, the dropped one
# closed, the added one bound. Then the failure cases: a new agent that fails before it is
# ready (the old keeps serving), a stale socket file after SIGKILL, an old agent that never
# answers or dies mid-handover (the new one binds afresh within the ~2 s bound).
#   agent_restart_test.sh AGENT
set -euo pipefail
agent=$1
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=lib.sh
source "$here/lib.sh"
require ip ss dig python3 bpftool curl

unique_names restart ednsrs
addr=$net.1
bh=192.0.2.$(((id + 11) % 250 + 1))
ns=edns-rs-$id
ctr=ctr-$id
pids=()

cleanup() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  # Whatever still runs in the container cgroup (a launcher's child the PIDs above missed).
  [ -e "$parent/$ctr/cgroup.kill" ] && echo 1 >"$parent/$ctr/cgroup.kill"
  [ -f "$tmp/gen1.yaml" ] && "$agent" --config "$tmp/gen1.yaml" --detach >/dev/null 2>&1
  remove_all "$ns"
  exit $rc
}
trap cleanup EXIT INT TERM

mkdir "$parent" "$parent/$ctr"
ip link add "$br" type bridge
ip addr add "$addr/24" dev "$br"
ip link set "$br" up
ip route add blackhole "$bh/32"
add_container_netns "$ns" 11 "r11-$id"

mkdir "$tmp/state"
cat >"$tmp/state/topology.json" <<JSON
{"index": 1,
 "servers": [{"name": "host1", "address": "$addr"}],
 "services": [{"name": "api"}, {"name": "web"}],
 "versions": [{"name": "v1", "generation": 1}],
 "containers": [
  {"id": "api-1", "service": "api", "version": "v1", "server": "host1", "address": "10.77.1.1"},
  {"id": "$ctr", "service": "web", "version": "v1", "server": "host1", "address": "10.77.9.1"}]}
JSON
write_config() { # write_config FILE LISTEN METRICS_PORT [EXTRA YAML LINE]
  cat >"$1" <<YAML
listen: [$2]
metrics_listen: 127.0.0.1:$3
server_name: host1
state_dir: $tmp/state
upstreams: ["$bh:53"]
allow_networks: [$net.0/24, 127.0.0.0/8]
bpf:
  enabled: true
  cgroup: $parent_rel
  redirect: true
  pin_path: $pin
${4:-}
YAML
}

start_agent() { # start_agent NAME CONFIG: sets $apid; output in $tmp/NAME.out
  "$agent" --config "$2" >"$tmp/$1.out" 2>&1 5<&- &
  apid=$!
  pids+=("$apid")
}
port_of() { # port_of NAME KIND ADDRESS: the port from a "listening on KIND ADDRESS:PORT" line
  sed -n "s/^listening on $2 $3:\([0-9]*\)$/\1/p" "$tmp/$1.out"
}
ok_counts() {
  sed -n 's/^progress udp_ok=\([0-9]*\) tcp_ok=\([0-9]*\)$/\1 \2/p' "$tmp/stream.out" | tail -n 1
}
wait_served() { # wait_served N: both streams get N more answers (10 s deadline)
  local u t bu bt
  read -r bu bt <<<"$(ok_counts)"
  for _ in $(seq 1 200); do
    read -r u t <<<"$(ok_counts)"
    [ "${u:-0}" -ge $((${bu:-0} + $1)) ] && [ "${t:-0}" -ge $((${bt:-0} + $1)) ] && return 0
    kill -0 "$stream" 2>/dev/null || fail "the query stream ended early"
    sleep 0.05
  done
  fail "the query stream did not get $1 more answers"
}
metrics_total() { # the queries_total sum scraped from the metrics listener
  curl -sf --max-time 2 "http://127.0.0.1:$mport/metrics" |
    awk '/^elasticdns_agent_queries_total/ { s += $2 } END { printf "%d\n", s }'
}

# takeover GEN CONFIG [hold]: agent GEN takes over from $cur (generation GEN-1), which must exit
# 0 by itself after logging that it handed over to the new PID. Sets $cur. With `hold`, a TCP
# connection that the old agent accepted before the handover stays open without a query: the
# old agent must keep it (and its copies of the sockets) while the stream goes on, answered by
# the new one alone, then answer the query sent late on it, then exit.
served=()
takeover() {
  local gen=$1 old=$cur prev=gen$(($1 - 1)) line n hold=${3:-}
  if [ -n "$hold" ]; then
    exec 5<>"/dev/tcp/127.0.0.1/$lport"
    for _ in $(seq 1 200); do
      ss -tnpH state established "( sport = :$lport )" | grep -q "pid=$old," && break
      sleep 0.05
    done
    ss -tnpH state established "( sport = :$lport )" | grep -q "pid=$old," ||
      fail "generation $((gen - 1)) did not accept the held connection"
  fi
  start_agent "gen$gen" "$2"
  wait_for "$tmp/gen$gen.out" '^listening on udp '
  if [ -n "$hold" ]; then
    wait_for "$tmp/$prev.out" 'serves the sockets now; draining'
    wait_served 100
    kill -0 "$old" 2>/dev/null || fail "generation $((gen - 1)) did not wait for its TCP connection"
    # api.cloud66.local A, id 0x1234, length-prefixed (RFC 7766)
    printf '\x00\x23\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03api\x07cloud66\x05local\x00\x00\x01\x00\x01' >&5
    timeout 3 od -An -tx1 -v <&5 | tr -d ' \n' >"$tmp/held.hex" || true
    exec 5<&-
    grep -q '^....1234.*0a4d0101' "$tmp/held.hex" ||
      fail "no answer on the held connection: $(cat "$tmp/held.hex")"
    echo "ok: generation $((gen - 1)) answered a query sent on its TCP connection after the handover"
  fi
  # Every socket: one UDP socket per worker (one worker per CPU) and a TCP listener for each of
  # the 2 listen addresses, and the metrics listener.
  grep -qE "handover: took $((2 * ($(nproc) + 1) + 1)) sockets from PID $old\$" "$tmp/gen$gen.out" ||
    fail "generation $gen did not take all $((2 * ($(nproc) + 1) + 1)) sockets of PID $old: $(grep handover "$tmp/gen$gen.out")"
  grep -q "server: adopted [0-9]* socket(s) from the previous agent" "$tmp/gen$gen.out" ||
    fail "generation $gen adopted nothing"
  if wait_exit "$old"; then :; else fail "generation $((gen - 1)) (PID $old) exited with $?"; fi
  line=$(grep 'agent: handed over to PID' "$tmp/$prev.out") ||
    fail "generation $((gen - 1)) did not log its handover"
  [[ $line == *"handed over to PID $apid after answering "* ]] || fail "handed over to whom? $line"
  n=$(sed -n 's/.*after answering \([0-9]*\) queries.*/\1/p' <<<"$line")
  [ "$n" -gt 0 ] || fail "generation $((gen - 1)) answered nothing"
  served+=("gen$((gen - 1))=$n")
  cur=$apid
  wait_served 200 # the stream goes on, answered by the new agent alone
  echo "ok: generation $gen (PID $cur) took over from PID $old, which answered $n queries and exited 0"
}

# --- generation 1: ports chosen by the kernel
write_config "$tmp/gen1.yaml" "\"$addr:0\", \"127.0.0.1:0\"" 0
start_agent gen1 "$tmp/gen1.yaml"
cur=$apid
wait_for "$tmp/gen1.out" '^listening on metrics '
grep -q 'ebpf: attached' "$tmp/gen1.out" || fail "generation 1 did not attach eBPF"
if grep -qi 'warn.*handover' "$tmp/gen1.out"; then fail "alarming log with no agent running"; fi
port=$(port_of gen1 udp "$addr")
lport=$(port_of gen1 udp 127.0.0.1)
mport=$(port_of gen1 metrics 127.0.0.1)
[ -S "$tmp/state/handover.sock" ] || fail "no control socket"
[ "$(stat -c %a "$tmp/state/handover.sock")" = 600 ] || fail "control socket mode"
echo "generation 1 (PID $cur) on $addr:$port, 127.0.0.1:$lport, metrics :$mport"
write_config "$tmp/same.yaml" "\"$addr:$port\", \"127.0.0.1:$lport\"" "$mport"

# --- the stream, from the container: resolv.conf-style target = the blackholed $bh
py=/usr/bin/python3 # Debian's, with python3-dnspython; not a launcher script
: >"$tmp/stream.out" # ok_counts may read it before the stream's shell opens it
run_in "$ctr" "$ns" -- "$py" "$here/query_stream.py" "$bh" api.cloud66.local 10.77.1.1 \
  "$tmp/stop" 45 >"$tmp/stream.out" 2>&1 &
stream=$!
pids+=("$stream")
wait_served 100

takeover 2 "$tmp/same.yaml" hold
[ "$(port_of gen2 udp "$addr")" = "$port" ] || fail "generation 2 is not on port $port"
[ "$(port_of gen2 metrics 127.0.0.1)" = "$mport" ] || fail "the metrics listener moved"
[ "$(metrics_total)" -gt 0 ] || fail "no metrics from generation 2"

# A new agent that fails before it is ready (a listen address it cannot bind, after it got the
# sockets): it exits 2, the old one keeps serving as if nothing happened.
write_config "$tmp/bad.yaml" "\"$addr:$port\", \"127.0.0.1:$lport\", \"203.0.113.7:53\"" "$mport"
start_agent bad "$tmp/bad.yaml"
if wait_exit "$apid"; then fail "an agent that cannot bind exited 0"; else rc=$?; fi
[ "$rc" -eq 2 ] || fail "failed agent: exit status $rc, want 2"
grep -q 'cannot bind udp 203.0.113.7:53' "$tmp/bad.out" || fail "no clear error: $(cat "$tmp/bad.out")"
wait_for "$tmp/gen2.out" 'went away before it was ready.*still serving'
kill -0 "$cur" || fail "generation 2 stopped after a failed handover"
# A config that does not even parse: refused before anything is asked.
printf 'listen: ["%s:%s"]\nbogus_key: 1\nstate_dir: %s\n' "$addr" "$port" "$tmp/state" >"$tmp/bad2.yaml"
start_agent bad2 "$tmp/bad2.yaml"
if wait_exit "$apid"; then fail "a bad config exited 0"; fi
wait_served 50
echo "ok: failed new agents (exit 2: $(grep -o 'cannot bind udp 203[^;]*' "$tmp/bad.out" | head -1)); generation 2 kept serving"

takeover 3 "$tmp/same.yaml"

# Generation 4 has another listen set: $addr:$port stays (adopted), 127.0.0.1:$lport goes
# (closed), 127.0.0.2 comes (bound afresh).
write_config "$tmp/gen4.yaml" "\"$addr:$port\", \"127.0.0.2:0\"" "$mport"
takeover 4 "$tmp/gen4.yaml"
[ "$(grep -c "passed [a-z]* 127.0.0.1:$lport, which is not a listen address: closed" "$tmp/gen4.out")" -ge 2 ] ||
  fail "generation 4 did not close the UDP and TCP sockets of 127.0.0.1:$lport"
nport=$(port_of gen4 udp 127.0.0.2)
expect "new listen address 127.0.0.2" "$(dig +short +tries=1 +time=2 @127.0.0.2 -p "$nport" api.cloud66.local)" 10.77.1.1
if dig +short +tries=1 +time=1 @127.0.0.1 -p "$lport" api.cloud66.local | grep -q 10.77; then
  fail "127.0.0.1:$lport still answers"
fi
echo "ok: 127.0.0.1:$lport closed with generation 3"

# --- stop the stream: not one failure
wait_served 100
touch "$tmp/stop"
# Generation 4 (the only agent left) answers the metrics scrape on the handed-over listener.
n=$(metrics_total)
[ "$n" -gt 0 ] || fail "generation 4 answered nothing"
served+=("gen4=$n(so far)")
if wait_exit "$stream"; then :; else fail "queries failed across the handovers: $(grep -E '^(failed|udp)' "$tmp/stream.out" | tail -n 20)"; fi
summary=$(tail -n 1 "$tmp/stream.out")
echo "ok: stream across 3 handovers: $summary; answered per generation: ${served[*]}"

# --- stale socket file: SIGKILL leaves it; the next agent finds nobody there and binds afresh
{
  kill -KILL "$cur"
  wait "$cur" || true
} 2>/dev/null
[ -S "$tmp/state/handover.sock" ] || fail "no socket file left by SIGKILL"
start_agent gen5 "$tmp/gen4.yaml"
cur=$apid
wait_for "$tmp/gen5.out" '^listening on metrics '
grep -q 'handover: .*no agent listens.*binding afresh' "$tmp/gen5.out" || fail "stale socket not noticed"
if grep -qi 'warn.*handover' "$tmp/gen5.out"; then fail "alarming log for a stale socket"; fi
expect "container after a stale socket" "$(run_in "$ctr" "$ns" -- dig +short +tries=1 +time=2 api.cloud66.local)" 10.77.1.1
kill -TERM "$cur"
if wait_exit "$cur"; then :; else fail "generation 5 exited with $?"; fi
echo "ok: stale socket file replaced"

# --- an old agent that never answers, or dies mid-handover: bounded wait, then bind afresh
mkdir "$tmp/fake"
cat >"$tmp/fake.py" <<'PY'
import os, socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.recv(64)
if mode == "silent":
    time.sleep(10)
PY
printf 'listen: ["127.0.0.1:0"]\nstate_dir: %s\nupstreams: ["%s:53"]\n' "$tmp/fake" "$bh" >"$tmp/fake.yaml"
for mode in silent dies; do
  rm -f "$tmp/fake/handover.sock"
  "$py" "$tmp/fake.py" "$tmp/fake/handover.sock" "$mode" >"$tmp/fake-$mode.out" 2>&1 &
  fake=$!
  pids+=("$fake")
  wait_for "$tmp/fake-$mode.out" '^ready'
  t0=$(date +%s%N)
  start_agent "after-$mode" "$tmp/fake.yaml"
  wait_for "$tmp/after-$mode.out" '^listening on udp '
  ms=$((($(date +%s%N) - t0) / 1000000))
  [ "$ms" -lt 4000 ] || fail "$mode old agent: the new one started after $ms ms"
  case $mode in
    silent) want='sent no sockets within 2000 ms; binding afresh' ;;
    dies) want='closed the connection before sending its sockets; binding afresh' ;;
  esac
  grep -q "$want" "$tmp/after-$mode.out" || fail "$mode: no clear log: $(cat "$tmp/after-$mode.out")"
  p=$(port_of "after-$mode" udp 127.0.0.1)
  dig +tries=1 +time=2 @127.0.0.1 -p "$p" api.cloud66.local | grep -q 'status: ' ||
    fail "$mode old agent: the new one does not answer"
  kill -TERM "$apid"
  if wait_exit "$apid"; then :; else fail "agent after $mode exited with $?"; fi
  kill "$fake" 2>/dev/null || true
  wait "$fake" 2>/dev/null || true
  echo "ok: $mode old agent: started in $ms ms: $want"
done

echo "RESULT $summary; answered per generation: ${served[*]}"
echo PASS
