#!/usr/bin/env bash
# The Vagrant test (ctest vagrant.scenarios, label vagrant): three Debian 12 hosts of
# vagrant/Vagrantfile on the lxc provider, the project's .deb installed in them,
# vagrant/scenarios.sh against them, then `vagrant destroy -f`. All of it runs inside a
# network namespace of its own whose only interfaces are loopback and the hosts' bridge, with
# no route: nothing can leave the machine.
#   run.sh <build dir>   (needs <build>/pkg-test/{old,new}.deb from pkg.build_debs)
# Needs root, vagrant, vagrant-lxc, lxc, debootstrap and musl-gcc (scripts/install-deps.sh);
# exits 77 (SKIPPED) without. Tears everything down on exit, failure or signal, and sweeps what
# a killed earlier run left (LXC containers edns-vg-*, the namespace, the bridge); then checks
# that nothing is left.
#   run.sh --destroy     the teardown alone (ctest vagrant.teardown), failing if anything is left
# Environment: ELASTICDNS_VAGRANT_KEEP=1 leaves the hosts up after the run (debugging;
# `vagrant/run.sh --destroy` removes them).
set -Eeuo pipefail
trap 'echo "run.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
ns=edns-vg
bridge=ednsvg0
cache=${ELASTICDNS_ROOTFS_CACHE:-/var/cache/elasticdns-test}
export VAGRANT_HOME=$cache/vagrant-home
export VAGRANT_DOTFILE_PATH=$cache/vagrant-state/dot
export VAGRANT_DEFAULT_PROVIDER=lxc
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_PLUGINS_UPDATE=1
work=$cache/vagrant-state
export ELASTICDNS_DEBS=$work/debs
export ELASTICDNS_BRIDGE=$bridge
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*"; }

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for tool in vagrant lxc-start lxc-destroy debootstrap musl-gcc nsenter ssh; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (scripts/install-deps.sh)"; exit 77; }
done
vagrant plugin list 2>/dev/null | grep -q vagrant-lxc ||
  { echo "SKIP: the vagrant-lxc plugin is missing (apt-get install vagrant-lxc)"; exit 77; }

# Runs a command in the namespace, with a /sys of the namespace's own (LXC finds the bridge
# there) and the machine's cgroup hierarchies under it (`ip netns exec` would hide them), in a
# private mount namespace.
in_ns() {
  nsenter --net="/run/netns/$ns" unshare --mount --propagation private bash -c '
    set -e; d=$(mktemp -d); mount --rbind /sys/fs/cgroup "$d"; mount -t sysfs sysfs /sys
    mount --rbind "$d" /sys/fs/cgroup; umount -l "$d"; rmdir "$d"; exec "$@"' in_ns "$@"
}
vg() { (cd "$here" && in_ns vagrant "$@"); }

# Removes the hosts, the namespace and the bridge, whatever state they are in.
sweep() {
  if [ -e "/run/netns/$ns" ] && [ -d "$VAGRANT_DOTFILE_PATH" ] && [ -d "$ELASTICDNS_DEBS" ]; then
    (cd "$here" && in_ns timeout 300 vagrant destroy -f) >"$work/destroy.log" 2>&1 || true
  fi
  for c in $(lxc-ls -1 2>/dev/null | grep '^edns-vg-' || true); do
    lxc-stop -k -n "$c" >/dev/null 2>&1 || true
    lxc-destroy -f -n "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$VAGRANT_DOTFILE_PATH"
  ip netns del "$ns" 2>/dev/null || true
  # LXC's cgroups of the hosts (payload and monitor, in every hierarchy), deepest first, and
  # its shared lxc.pivot when empty.
  find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name 'lxc.*' 2>/dev/null |
    { grep -E '/lxc\.(payload|monitor)\.edns-vg-|/lxc\.pivot$' || true; } | while read -r cg; do
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
leftovers() {
  local left=""
  lxc-ls -1 2>/dev/null | grep -q '^edns-vg-' && left+=" LXC containers: $(lxc-ls -1 | grep '^edns-vg-' | paste -sd' ');"
  [ -e "/run/netns/$ns" ] && left+=" netns $ns;"
  ip link show "$bridge" >/dev/null 2>&1 && left+=" bridge $bridge;"
  pgrep -f "lxc-start.*edns-vg-" >/dev/null && left+=" lxc-start processes;"
  local cgs
  cgs=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name 'lxc.*edns-vg-*' 2>/dev/null)
  [ -z "$cgs" ] || left+=" cgroups: $(echo "$cgs" | paste -sd' ');"
  echo "$left"
}
# The sweep, then the check that nothing is left; fails if something is.
teardown() {
  sweep
  local left
  left=$(leftovers)
  if [ -n "$left" ]; then
    echo "FAIL: left behind after teardown:$left"
    return 1
  fi
  stamp "nothing left behind (no LXC container, cgroup, netns, bridge or lxc-start process)"
}
if [ "${1:-}" = --destroy ]; then
  teardown
  exit
fi
build=$(cd "$1" && pwd)
[ -f "$build/pkg-test/old.deb" ] && [ -f "$build/pkg-test/new.deb" ] ||
  { echo "FAIL: run pkg.build_debs first ($build/pkg-test/{old,new}.deb)"; exit 1; }

mkdir -p "$work"
exec 8>"$work/.lock"
flock -n 8 || { echo "FAIL: another vagrant/run.sh is running"; exit 1; }
sweep
rc=1
finish() {
  local status=$rc
  set +e
  if [ "${ELASTICDNS_VAGRANT_KEEP:-0}" = 1 ]; then
    stamp "hosts kept (ELASTICDNS_VAGRANT_KEEP=1); remove them with: vagrant/run.sh --destroy"
    exit "$status"
  fi
  stamp "tearing down"
  teardown || status=1
  exit "$status"
}
trap finish EXIT
trap 'exit 1' INT TERM HUP

# The packages, and the static musl client for the test image.
rm -rf "$ELASTICDNS_DEBS"
mkdir -p "$ELASTICDNS_DEBS"
cp "$build/pkg-test/old.deb" "$ELASTICDNS_DEBS/elasticdns.deb"
cp "$build/pkg-test/new.deb" "$ELASTICDNS_DEBS/elasticdns-new.deb"
musl-gcc -static -O2 -o "$ELASTICDNS_DEBS/musl_resolve" "$here/../tests/integration/dc/musl_resolve.c"
cp "$here/../tests/integration/dc/traffic_backend.py" "$ELASTICDNS_DEBS/"

# The box: built offline and cached (box.sh), added to Vagrant once per build of it.
stamp "box"
box=$(bash "$here/box.sh" "$cache")
if [ "$(cat "$VAGRANT_HOME/.elasticdns-box" 2>/dev/null)" != "$box" ]; then
  vagrant box add --force --name elasticdns/bookworm-lxc --provider lxc "$box" >/dev/null
  echo "$box" >"$VAGRANT_HOME/.elasticdns-box"
fi

# The namespace: loopback and the hosts' bridge (10.78.0.1/24), no route anywhere else.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add "$bridge" type bridge
ip -n "$ns" addr add 10.78.0.1/24 dev "$bridge"
ip -n "$ns" link set "$bridge" up
[ -z "$(ip -n "$ns" route show default)" ] || { echo "FAIL: the namespace has a default route"; exit 1; }

# Boot in one `vagrant up` (the hosts in parallel), then provision each host in a Vagrant
# process of its own. Vagrant 2.3.4 running several machines' SSH sessions in one process
# sometimes fails one of them with "Bad file descriptor - recvfrom(2)" (seen once in the runs
# here); each step is tried twice, and the logs say when a retry was needed.
stamp "vagrant up"
try_twice() { # try_twice LOG CMD...: the command, again once if it failed
  local log=$1
  shift
  "$@" >"$log" 2>&1 && return 0
  echo "retrying after a failure ($log.1): $*"
  mv "$log" "$log.1"
  "$@" >"$log" 2>&1
}
if ! try_twice "$work/up.log" vg up --provider=lxc --no-provision; then
  grep -v '^/usr/' "$work/up.log" | tail -30
  echo "FAIL: vagrant up (log above)"
  exit 1
fi
stamp "hosts up"
declare -A provisioning
for m in central host1 host2; do
  try_twice "$work/provision-$m.log" vg provision "$m" &
  provisioning[$m]=$!
done
for m in central host1 host2; do
  if ! wait "${provisioning[$m]}"; then
    grep -v '^/usr/' "$work/provision-$m.log" | tail -30
    echo "FAIL: vagrant provision $m (log above)"
    exit 1
  fi
done
stamp "hosts provisioned"
vg ssh-config >"$work/ssh_config"
export ELASTICDNS_SSH_CONFIG=$work/ssh_config
if in_ns bash "$here/scenarios.sh"; then
  rc=0
fi
stamp "scenarios done (rc $rc)"
