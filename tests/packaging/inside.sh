#!/bin/bash
# Runs inside the system container booted by nspawn.sh (systemd is PID 1), as root.
#   lifecycle  dpkg -i old.deb → agent enabled and running → edit agent.yml → dpkg -i new.deb
#              (upgrade) → edited config kept, agent restarted → dpkg -r → stopped, eBPF
#              detached, no unit left → dpkg -P → no config, state, token or pin left
#   restart    central + agent from the package; dig asks the agent in a loop (UDP and TCP,
#              alternately) while `systemctl restart elasticdns-agent` runs 5 times; every
#              answer must be the registered address: no failed query.
set -u
mode=$1
export DEBIAN_FRONTEND=noninteractive
fail() {
  echo "FAIL: $*"
  systemctl --no-pager status 'elasticdns*' 2>&1 | tail -40
  journalctl --no-pager -n 60 -u elasticdns-agent -u elasticdns-central 2>&1
  exit 1
}
step() { echo "== $(date +%T.%N | cut -c1-12) $*"; }
# Polls a command until it succeeds, for at most $1 seconds.
wait_for() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
pins() { find /sys/fs/bpf/elasticdns -mindepth 1 2>/dev/null | wc -l; }
ctl() { elasticdnsctl --token-file /etc/elasticdns/admin.token "$@"; }
answer() { dig @127.0.0.1 "$1" A +short +tries=1 +time=2 ${2:-}; }

step "install $(dpkg-deb -f /pkgtest/old.deb Version)"
dpkg -i /pkgtest/old.deb </dev/null || fail "dpkg -i old.deb"
wait_for 20 systemctl is-active elasticdns-agent.service || fail "agent not started by postinst"
systemctl is-active -q elasticdns-agent.socket || fail "socket not active"
systemctl is-enabled -q elasticdns-agent.service || fail "agent not enabled"
systemctl is-enabled -q elasticdns-agent.socket || fail "socket not enabled"
systemctl is-enabled -q elasticdns-central.service && fail "central enabled by default"
[ -d /var/lib/elasticdns ] || fail "no state directory"
for t in admin agent; do
  [ "$(stat -c %a /etc/elasticdns/$t.token)" = 600 ] || fail "$t.token is not 0600"
done
wait_for 10 answer nothing.cloud66.local || fail "agent does not answer"

# eBPF on the container's system.slice, when the container has a bpffs (nspawn.sh): the
# agent runs with the unit's capabilities and pins its programs and maps.
bpf=no
if grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
  bpf=yes
  step "enable eBPF in agent.yml"
  awk '/^bpf:/{b=1} b && /enabled: false/{sub("enabled: false", "enabled: true"); b=0} {print}' \
    /etc/elasticdns/agent.yml >/tmp/agent.yml && cp /tmp/agent.yml /etc/elasticdns/agent.yml
  systemctl restart elasticdns-agent || fail "restart with eBPF"
  journalctl -u elasticdns-agent --no-pager | grep 'ebpf:' | tail -1
  [ "$(pins)" -gt 0 ] || fail "eBPF enabled but nothing pinned under /sys/fs/bpf/elasticdns"
  wait_for 10 answer nothing.cloud66.local || fail "agent does not answer with eBPF"
fi
echo "agent answers; eBPF $bpf, $(pins) pinned object(s) under /sys/fs/bpf/elasticdns"

if [ "$mode" = restart ]; then
  step "central with one container"
  systemctl enable --now elasticdns-central || fail "central does not start"
  wait_for 20 ctl topology || fail "central unreachable"
  ctl server put test --address 127.0.0.1 >/dev/null || fail "server put"
  ctl service put api >/dev/null || fail "service put"
  ctl container put c1 --service api --version v1 --server test --address 10.1.2.3 >/dev/null ||
    fail "container put"
  wait_for 30 sh -c '[ "$(dig @127.0.0.1 api.cloud66.local A +short +tries=1 +time=1)" = 10.1.2.3 ]' ||
    fail "the agent never answered api.cloud66.local with 10.1.2.3"

  step "queries in a loop (UDP and TCP, one client each) across 5 restarts"
  rm -f /tmp/stop
  # query_loop PROTO: one dig after the other until /tmp/stop; counts in /tmp/loop-PROTO.
  query_loop() {
    local proto=$1 queries=0 failures=0 got
    while [ ! -e /tmp/stop ] && [ "$queries" -lt 20000 ]; do
      got=$(answer api.cloud66.local "$proto" 2>&1)
      if [ "$got" != 10.1.2.3 ]; then
        failures=$((failures + 1))
        echo "query $queries ($proto) at $(date +%T.%N | cut -c1-12): '$got'"
      fi
      queries=$((queries + 1))
      echo "$queries $failures" >"/tmp/loop$proto.tmp" && mv "/tmp/loop$proto.tmp" "/tmp/loop$proto"
    done
  }
  count() { cut -d' ' -f1 "/tmp/loop$1" 2>/dev/null || echo 0; }
  # At least 10 more queries of each client since the last restart (pacing by progress).
  progressed() { [ "$(count +notcp)" -ge $(($1 + 10)) ] && [ "$(count +tcp)" -ge $(($2 + 10)) ]; }
  query_loop +notcp &
  udp_loop=$!
  query_loop +tcp &
  tcp_loop=$!
  pids=("$(systemctl show -P MainPID elasticdns-agent)")
  for i in 1 2 3 4 5; do
    wait_for 60 progressed "$(count +notcp)" "$(count +tcp)" || fail "the query loops stalled"
    t0=$(date +%s%N)
    systemctl restart elasticdns-agent || fail "restart $i"
    echo "restart $i took $((($(date +%s%N) - t0) / 1000000)) ms"
    pids+=("$(systemctl show -P MainPID elasticdns-agent)")
  done
  wait_for 60 progressed "$(count +notcp)" "$(count +tcp)" || fail "the query loops stalled"
  touch /tmp/stop
  wait "$udp_loop" "$tcp_loop"
  read -r udp udp_failures </tmp/loop+notcp
  read -r tcp tcp_failures </tmp/loop+tcp
  queries=$((udp + tcp))
  failures=$((udp_failures + tcp_failures))
  distinct=$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)
  echo "queries=$queries (udp $udp, tcp $tcp) failures=$failures agent_pids=${pids[*]}"
  [ "$distinct" = 6 ] || fail "the agent was not restarted 5 times (pids ${pids[*]})"
  [ "$failures" = 0 ] || fail "$failures of $queries queries failed across the restarts"
  echo "PASS: $queries queries, 0 failed, across 5 restarts"
  exit 0
fi

step "edit the config, then upgrade to $(dpkg-deb -f /pkgtest/new.deb Version)"
echo "# edited by the package test" >>/etc/elasticdns/agent.yml
cp /etc/elasticdns/agent.yml /tmp/agent.yml.edited
cp /etc/elasticdns/admin.token /tmp/admin.token
pid_before=$(systemctl show -P MainPID elasticdns-agent)
dpkg -i /pkgtest/new.deb </dev/null || fail "upgrade"
[ "$(dpkg-query -W -f '${Version}' elasticdns)" = "$(dpkg-deb -f /pkgtest/new.deb Version)" ] ||
  fail "not upgraded"
cmp /etc/elasticdns/agent.yml /tmp/agent.yml.edited || fail "the upgrade changed the edited agent.yml"
cmp /etc/elasticdns/admin.token /tmp/admin.token || fail "the upgrade changed the admin token"
wait_for 20 systemctl is-active elasticdns-agent.service || fail "agent not running after upgrade"
[ "$(systemctl show -P MainPID elasticdns-agent)" != "$pid_before" ] || fail "agent not restarted"
wait_for 10 answer nothing.cloud66.local || fail "agent does not answer after the upgrade"
if [ "$bpf" = yes ]; then
  [ "$(pins)" -gt 0 ] || fail "the upgrade lost the pinned programs"
  echo "after the upgrade: $(pins) pinned object(s)"
fi

step "remove"
dpkg -r elasticdns </dev/null || fail "dpkg -r"
systemctl is-active -q elasticdns-agent.service && fail "agent still running"
systemctl is-active -q elasticdns-agent.socket && fail "socket still listening"
[ -e /usr/sbin/elasticdns-agent ] && fail "binary left"
ls /usr/lib/systemd/system/elasticdns* 2>/dev/null && fail "unit files left"
[ "$(pins)" = 0 ] || fail "pinned objects left: $(find /sys/fs/bpf/elasticdns)"
[ "$bpf" = yes ] && echo "after dpkg -r: no pinned object, eBPF detached"
cmp /etc/elasticdns/agent.yml /tmp/agent.yml.edited || fail "remove (not purge) lost the config"

step "purge"
dpkg -P elasticdns </dev/null || fail "dpkg -P"
[ -e /etc/elasticdns ] && fail "/etc/elasticdns left: $(ls -A /etc/elasticdns)"
[ -e /var/lib/elasticdns ] && fail "/var/lib/elasticdns left"
left=$(find /etc/systemd /usr/lib/systemd /lib/systemd -name 'elasticdns*' ! -name 'elasticdns-pkgtest*' 2>/dev/null)
[ -z "$left" ] || fail "unit files or links left: $left"
systemctl daemon-reload
[ "$(systemctl list-unit-files 'elasticdns-*' --no-legend | grep -vc pkgtest)" = 0 ] ||
  fail "systemd still knows: $(systemctl list-unit-files 'elasticdns-*' --no-legend)"
[ -e /sys/fs/bpf/elasticdns ] && fail "pin directory left"
echo "PASS: install, upgrade (config kept), remove, purge"
