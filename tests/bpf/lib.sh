# Shared by the eBPF shell tests (source it): prerequisites, polling with deadlines, running a
# command as a member of a test cgroup, and container network namespaces on a bridge.
# The functions use the caller's $tmp, $parent, $br, $net, $bh (and $net6, $bh6 when set).

skip() { echo "SKIP: $*"; exit 77; }

# require TOOL...: SKIPPED unless root with every tool on PATH; sets $cgmount (cgroup2 mount).
require() {
  [ "$(id -u)" -eq 0 ] || skip "needs root"
  local tool
  for tool in "$@"; do command -v "$tool" >/dev/null || skip "$tool missing"; done
  cgmount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
  [ -n "$cgmount" ] || skip "no cgroup2 mount"
}

# remove_cgroups: removes $parent and the cgroups right below it. A killed member may take a
# moment to leave its cgroup: each rmdir is retried, bounded (2 s).
remove_cgroups() {
  local cg
  for cg in "$parent"/*/ "$parent"; do
    for _ in $(seq 1 40); do
      [ -d "$cg" ] || break
      rmdir "$cg" 2>/dev/null && break
      sleep 0.05
    done
  done
}

# remove_all NS...: the end of every test's cleanup: the network namespaces NS (and their
# /etc/netns), $br, the blackhole routes of $bh (and $bh6), the cgroups, $tmp.
remove_all() {
  local ns
  for ns in "$@"; do
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  ip link del "$br" 2>/dev/null
  ip route del blackhole "$bh/32" 2>/dev/null
  [ -n "${bh6:-}" ] && ip -6 route del blackhole "$bh6/128" 2>/dev/null
  remove_cgroups
  rm -rf "$tmp"
}

# unique_names NAME BRIDGE: this run's names, unique by PID so tests may run side by side:
# $id, $tmp (a new temp dir), $parent_rel/$parent (cgroup edns-NAME-PID), $pin, $br (bridge
# BRIDGE-PID) and $net (a 10.x.y /24 prefix). After require.
unique_names() {
  id=$$
  tmp=$(mktemp -d)
  parent_rel=edns-$1-$id
  parent=$cgmount/$parent_rel
  pin=/sys/fs/bpf/edns-$1-$id
  br=$2$id
  net=10.$((id % 200 + 20)).$(((id / 200) % 250 + 1))
}

fail() {
  echo "FAIL: $*"
  local f
  for f in "$tmp"/*.out; do echo "--- $f"; tail -n 50 "$f"; done
  exit 1
}

# wait_for FILE REGEX: polls for a line, 10 s deadline.
wait_for() {
  for _ in $(seq 1 200); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "timed out waiting for /$2/ in $1"
}

# wait_exit PID: waits for a child with a 20 s deadline (then kills it); returns its status.
wait_exit() {
  for _ in $(seq 1 400); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$1" 2>/dev/null && echo "pid $1 did not exit in time"
  wait "$1"
}

# run_in CGROUP [NETNS] -- CMD...: runs CMD as a member of $parent/CGROUP (joined before
# `ip netns exec`, which remounts /sys), in the netns when one is given.
run_in() {
  local cg=$1 ns=$2
  shift 3
  if [ -n "$ns" ]; then
    sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$@"' "$parent/$cg" "$ns" "$@"
  else
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$parent/$cg" "$@"
  fi
}

expect() { # expect WHAT GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
  echo "ok: $1 -> $2"
}

# add_container_netns NS I VETH: netns NS with eth0 = $net.I/24 (and $net6::I/64 when $net6 is
# set) bridged to $br through VETH; $bh (and $bh6) blackholed; a resolv.conf naming $bh.
add_container_netns() {
  local ns=$1 i=$2 veth=$3
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$br" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$net.$i/24" dev eth0
  if [ -n "${net6:-}" ]; then ip -n "$ns" addr add "$net6::$i/64" dev eth0 nodad; fi
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add blackhole "$bh/32"
  if [ -n "${bh6:-}" ]; then ip -n "$ns" -6 route add blackhole "$bh6/128"; fi
  mkdir -p "/etc/netns/$ns"
  printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$bh" >"/etc/netns/$ns/resolv.conf"
}
