#!/usr/bin/env bash
# Prints the path of a Debian 12 root file system with systemd, dig and the agent's runtime
# libraries, for booting with systemd-nspawn. It is debootstrap'd once (~4 min on a fresh
# machine, from the Debian mirror in /etc/apt/sources.list) into a cache directory and reused:
#   rootfs.sh [cache dir]     default: $ELASTICDNS_ROOTFS_CACHE or /var/cache/elasticdns-test
# The cache entry's name is a hash of the package list, so a changed list builds a new one.
# Callers copy the root before changing it (cp --reflink=auto -a), so the cache stays clean.
set -euo pipefail

cache=${1:-${ELASTICDNS_ROOTFS_CACHE:-/var/cache/elasticdns-test}}
suite=bookworm
# systemd as PID 1, dig for the test's queries, and the runtime libraries of the elasticdns
# package (its Depends, computed by dpkg-shlibdeps, must be a subset: the test checks dpkg -i).
packages=(
  systemd systemd-sysv dbus dnsutils iproute2 procps
  libboost-program-options1.74.0 libldns3 libspdlog1.10 libfmt9 libyaml-cpp0.7 libsqlite3-0
  libsystemd0 libbpf1 libelf1 zlib1g libssl3 libstdc++6 libgcc-s1
)
include=$(printf '%s\n' "${packages[@]}" | sort -u | paste -sd, -)
key=$(printf '%s %s' "$suite" "$include" | sha256sum | cut -c1-12)
root="$cache/$suite-$key"

mkdir -p "$cache"
# One builder at a time; the others wait and reuse its root.
exec 9>"$cache/.lock"
flock 9
if [ -e "$root/.complete" ]; then
  echo "$root"
  exit 0
fi
rm -rf "$root"

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
  head -1)
mirror=${mirror:-http://deb.debian.org/debian}
tmp="$root.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "pkg_rootfs: debootstrap $suite into $root (first run only, a few minutes)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$mirror" >&2
# No network inside the test container: nothing to resolve, nothing to update.
rm -f "$tmp/etc/resolv.conf"
echo "elasticdns-test" >"$tmp/etc/hostname"
chroot "$tmp" apt-get clean
touch "$tmp/.complete"
mv "$tmp" "$root"
trap - EXIT
echo "$root"
