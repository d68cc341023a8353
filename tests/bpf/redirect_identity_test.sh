#!/usr/bin/env bash
# Redirect + caller identity with real processes on real cgroups and network namespaces.
#   redirect_identity_test.sh RESPONDER MUSL_CLIENT GLIBC_CLIENT
# Topology (names carry the PID): cgroup <cg2>/edns-test-PID with children
#   ctrA-PID, ctrB-PID   containers: each in its own netns, veth to bridge ednsbrPID
#   hostA, hostB         host-netns callers (same source address, told apart by socket)
#   docker-<64hex>.scope a docker-named cgroup (pattern match)
#   excluded             listed in exclude_cgroups: never redirected
# The responder (stand-in for the agent) listens on the bridge address with a kernel-chosen
# port and answers A with an address chosen by the identified container. Every resolv.conf
# names BH (192.0.2.x, TEST-NET-1), blackholed in every namespace: only a working redirect gets
# an answer. Proves: redirect (connect4/sendmsg4/recvmsg4/getpeername4, v4-mapped via *6),
# identity (glibc getent, static musl, dig +tcp, dual-stack python), exclusion, a restart in the
# middle of a query stream without a failed query, detach leaving no pin and no program.
set -euo pipefail
responder=$1 musl=$2 glibc=$3

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require ip dig getent python3 bpftool
[ -x "$musl" ] || skip "musl client not built (musl-tools)"

unique_names test ednsbr
agent=$net.1
bh=192.0.2.$((id % 250 + 1))
hex=$(printf '%064x' $((id * 7919)))
nsA=edns-a-$id nsB=edns-b-$id
pids=()

cleanup() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  "$responder" --detach --pin "$pin" >/dev/null 2>&1
  remove_all "$nsA" "$nsB"
  exit $rc
}
trap cleanup EXIT INT TERM


# --- cgroups
mkdir "$parent"
for cg in ctrA-$id ctrB-$id hostA hostB "docker-$hex.scope" excluded lateexcl; do mkdir "$parent/$cg"; done

# --- network: a bridge on the host side, one netns per container, BH blackholed everywhere
ip link add "$br" type bridge
ip addr add "$agent/24" dev "$br"
ip link set "$br" up
ip route add blackhole "$bh/32"
i=10
for ns in "$nsA" "$nsB"; do
  i=$((i + 1))
  add_container_netns "$ns" "$i" "v$i-$id"
done


responder_args=(--cgroup "$parent_rel" --pin "$pin" --listen "$agent" --exclude "$parent_rel/excluded"
  --map "ctrA-$id=10.77.0.1" --map "ctrB-$id=10.77.0.2" --map hostA=10.77.0.11
  --map hostB=10.77.0.12 --map "$hex=10.77.0.13")


# Without privileges: a clear message saying why, and nothing attached.
if command -v setpriv >/dev/null; then
  set +e
  setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    "$responder" "${responder_args[@]}" >"$tmp/noprivs.out" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 3 ] && grep -q 'needs root, or CAP_BPF' "$tmp/noprivs.out" ||
    fail "unprivileged start: rc=$rc: $(cat "$tmp/noprivs.out")"
  [ -z "$(bpftool cgroup show "$parent" | tail -n +2)" ] || fail "unprivileged start attached"
  echo "ok: unprivileged: $(cat "$tmp/noprivs.out")"
fi

"$responder" "${responder_args[@]}" >"$tmp/r1.out" 2>&1 &
r1=$!
pids+=("$r1")
wait_for "$tmp/r1.out" '^listening on '
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/r1.out")
echo "responder 1 on $agent:$port (pid $r1)"



# --- containers in their own netns; resolv.conf names the blackholed BH
expect "glibc getent in ctrA" "$(run_in "ctrA-$id" "$nsA" -- getent hosts api.cloud66.local | awk '{print $1}')" 10.77.0.1
expect "glibc getent in ctrB" "$(run_in "ctrB-$id" "$nsB" -- getent hosts api.cloud66.local | awk '{print $1}')" 10.77.0.2
run_in "ctrA-$id" "$nsA" -- "$musl" api.cloud66.local 20 10.77.0.1 >"$tmp/musl.out" || fail "static musl client in ctrA"
echo "ok: static musl in ctrA: $(cat "$tmp/musl.out")"
run_in "ctrB-$id" "$nsB" -- "$glibc" api.cloud66.local 20 10.77.0.2 >"$tmp/glibc.out" || fail "glibc client in ctrB"
echo "ok: glibc client in ctrB: $(cat "$tmp/glibc.out")"
expect "dig +tcp in ctrA" "$(run_in "ctrA-$id" "$nsA" -- dig +tcp +short +tries=1 +time=2 api.cloud66.local)" 10.77.0.1
expect "dig TXT in ctrB" "$(run_in "ctrB-$id" "$nsB" -- dig +short +tries=1 +time=2 TXT api.cloud66.local | cut -d' ' -f1)" "\"container=ctrB-$id"

# Dual-stack socket: sendto ::ffff:BH goes through sendmsg4, the reply through recvmsg6 and
# must appear to come from ::ffff:BH port 53; a TCP socket's getpeername shows BH:53.
cat >"$tmp/dualstack.py" <<'PY'
import socket, struct, sys
bh, want = sys.argv[1], sys.argv[2]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03api\x07cloud66\x05local\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(q, ("::ffff:" + bh, 53))
data, frm = s.recvfrom(512)
assert frm[0] == "::ffff:" + bh and frm[1] == 53, "reply source %r" % (frm,)
got = socket.inet_ntoa(data[-4:])
assert got == want, "answer %s, want %s" % (got, want)
t = socket.create_connection((bh, 53), timeout=2)
assert t.getpeername() == (bh, 53), "getpeername %r" % (t.getpeername(),)
t.close()
print("from", frm[0], frm[1], "answer", got)
PY
run_in "ctrB-$id" "$nsB" -- python3 "$tmp/dualstack.py" "$bh" 10.77.0.2 >"$tmp/py.out" 2>&1 || fail "dual-stack v4-mapped socket in ctrB"
echo "ok: dual-stack socket in ctrB: $(cat "$tmp/py.out")"

# --- host-netns callers: same source address, identified by their socket's cgroup
expect "host caller hostA" "$(run_in hostA "" -- dig +short +tries=1 +time=2 @"$bh" api.cloud66.local)" 10.77.0.11
expect "host caller hostB" "$(run_in hostB "" -- dig +short +tries=1 +time=2 @"$bh" api.cloud66.local)" 10.77.0.12
expect "docker-named cgroup" "$(run_in "docker-$hex.scope" "" -- dig +short +tries=1 +time=2 @"$bh" api.cloud66.local)" 10.77.0.13
if run_in excluded "" -- dig +short +tries=1 +time=1 @"$bh" api.cloud66.local >/dev/null 2>&1; then
  fail "the excluded cgroup was redirected"
fi
echo "ok: excluded cgroup not redirected"

# --- a socket caches its exclusion decision per program load: a socket in lateexcl is
# redirected by responder 1's programs; responder 2's programs exclude lateexcl, so the same
# socket's next query must not be redirected: it goes to the blackholed BH, whose route refuses
# it (EINVAL) or drops it.
cat >"$tmp/late.py" <<'PY'
import socket, struct, sys
bh = sys.argv[1]
q = struct.pack(">HHHHHH", 0x4321, 0x0100, 1, 0, 0, 0) + b"\x03api\x07cloud66\x05local\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in sys.stdin:  # one query per line read
    s.settimeout(float(line))
    try:
        s.sendto(q, (bh, 53))
        data, frm = s.recvfrom(512)
        print("answer", socket.inet_ntoa(data[-4:]), flush=True)
    except (socket.timeout, OSError) as e:
        print("unanswered", e, flush=True)
PY
mkfifo "$tmp/late.in"
run_in lateexcl "" -- python3 "$tmp/late.py" "$bh" <"$tmp/late.in" >"$tmp/late.out" 2>&1 &
pids+=($!)
exec {late_fd}>"$tmp/late.in"
echo 2 >&$late_fd
wait_for "$tmp/late.out" '^(answer|unanswered)'
grep -q '^answer 10.77.255.254$' "$tmp/late.out" || fail "lateexcl before the restart: $(cat "$tmp/late.out")"
echo "ok: lateexcl socket redirected by responder 1"

# --- restart in the middle of a query stream: the new responder joins the port's SO_REUSEPORT
# group, reuses the pinned maps and swaps the pinned links; the old one drains and exits.
run_in "ctrA-$id" "$nsA" -- "$musl" api.cloud66.local 4000 10.77.0.1 >"$tmp/stream.out" 2>&1 &
stream=$!
pids+=("$stream")
wait_for "$tmp/stream.out" '^progress '
"$responder" "${responder_args[@]}" --exclude "$parent_rel/lateexcl" --port "$port" --takeover \
  >"$tmp/r2.out" 2>&1 &
r2=$!
pids+=("$r2")
wait_for "$tmp/r2.out" '^listening on '
kill -TERM "$r1"
wait_exit "$r1" || fail "responder 1 exited with $?"
wait_exit "$stream" || fail "query stream across the restart: $(cat "$tmp/stream.out")"
grep -q 'maps=reused' "$tmp/r2.out" || fail "responder 2 did not reuse the pinned maps"
served1=$(sed -n 's/^served //p' "$tmp/r1.out")
[ "${served1:-0}" -ge 200 ] || fail "responder 1 served ${served1:-0}: the restart was not mid-stream"
echo "ok: stream across restart: $(tail -1 "$tmp/stream.out") (responder 1 served $served1 in all)"
expect "identity after restart" "$(run_in "ctrB-$id" "$nsB" -- getent hosts api.cloud66.local | awk '{print $1}')" 10.77.0.2
echo 1 >&$late_fd
for _ in $(seq 1 100); do [ "$(wc -l <"$tmp/late.out")" -ge 2 ] && break; sleep 0.05; done
[ "$(sed -n 2p "$tmp/late.out" | cut -d' ' -f1)" = unanswered ] ||
  fail "lateexcl after the restart: $(cat "$tmp/late.out")"
exec {late_fd}>&-
echo "ok: the same lateexcl socket is excluded by responder 2's programs"

kill -TERM "$r2"
wait_exit "$r2" || fail "responder 2 exited with $?"
served2=$(sed -n 's/^served //p' "$tmp/r2.out")
[ "${served2:-0}" -gt 0 ] || fail "responder 2 served nothing: the restart was not mid-stream"
for reason in identified redirected restored excluded; do
  n=$(sed -n "s/^counter $reason //p" "$tmp/r2.out")
  [ "${n:-0}" -gt 0 ] || fail "counter $reason is ${n:-missing}"
done
echo "ok: counters: $(grep ^counter "$tmp/r2.out" | tr '\n' ' ')"
grep -qE '^metric elasticdns_bpf_events_total\{reason="redirected"\} [1-9]' "$tmp/r2.out" ||
  fail "metric elasticdns_bpf_events_total{reason=redirected} missing"
grep -qE '^metric elasticdns_bpf_identity_lookups_total\{result="slot"\} [1-9]' "$tmp/r2.out" ||
  fail "no identity lookup was served by the mmap'ed slots"

# --- with no agent running, the pinned programs still redirect (into the void: no answer), and
# detach removes every pin and program.
"$responder" --detach --pin "$pin" || fail "detach"
[ ! -e "$pin" ] || fail "pins left: $(ls "$pin")"
attached=$(bpftool cgroup show "$parent" | tail -n +2)
[ -z "$attached" ] || fail "programs still attached: $attached"
echo "ok: detach left no pin and no program"
echo PASS
