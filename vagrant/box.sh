#!/usr/bin/env bash
# Builds the Vagrant box of the multi-host tests offline, from Debian's packages only, and
# prints its path. No box is downloaded and nothing of the project is in it: the hosts get the
# project's .deb at `vagrant up`.
#   box.sh [cache dir]   default: $ELASTICDNS_ROOTFS_CACHE or /var/cache/elasticdns-test
# The box (provider lxc: rootfs.tar.gz + lxc-config + metadata.json) is debootstrap'd once
# (~3-5 min, from the Debian mirror in /etc/apt sources) and cached under a name that is a hash
# of this file, so any change here builds a new one. It holds systemd as PID 1, sshd with
# Vagrant's insecure key for the `vagrant` user (Vagrant replaces it at the first `up`), sudo,
# Docker, unbound, nginx, wireguard-go, dig, and the runtime libraries the elasticdns .deb
# depends on (the hosts have no route to any mirror: `dpkg -i` must find everything there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${ELASTICDNS_ROOTFS_CACHE:-/var/cache/elasticdns-test}}
suite=bookworm
packages=(
  systemd systemd-sysv dbus openssh-server sudo iproute2 iputils-ping procps psmisc
  dnsutils curl ca-certificates python3 less
  docker.io unbound nginx-light wireguard-go wireguard-tools
  libboost-program-options1.74.0 libldns3 libspdlog1.10 libfmt9 libyaml-cpp0.7 libsqlite3-0
  libsystemd0 libbpf1 libelf1 zlib1g libssl3 libstdc++6 libgcc-s1 init-system-helpers
)
key=$(cat "$0" "$here/lxc-config" | sha256sum | cut -c1-12)
dir=$cache/vagrant-box-$key
box=$dir/elasticdns-bookworm-lxc.box

mkdir -p "$cache"
exec 9>"$cache/.vagrant-box.lock"
flock 9
if [ -e "$dir/.complete" ]; then
  echo "$box"
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
  head -1)
mirror=${mirror:-http://deb.debian.org/debian}
tmp=$dir/tmp
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
root=$tmp/rootfs
echo "vagrant box: debootstrap $suite into $root (first run only, a few minutes)" >&2
include=$(printf '%s\n' "${packages[@]}" | sort -u | paste -sd, -)
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >&2

# The vagrant user: passwordless sudo, Vagrant's well-known insecure key (Debian's vagrant
# package ships its public half; Vagrant swaps in a key of its own at the first boot).
chroot "$root" useradd -m -s /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"
insecure=$(find /usr/share/rubygems-integration /usr/lib/ruby -path '*vagrant*/keys/vagrant.pub' \
  2>/dev/null | head -1)
[ -n "$insecure" ] || { echo "box.sh: Vagrant's keys/vagrant.pub not found (apt-get install vagrant)" >&2; exit 1; }
install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$insecure" "$root/home/vagrant/.ssh/authorized_keys"
chroot "$root" chown -R vagrant:vagrant /home/vagrant
# No network beyond the test's bridge: nothing to resolve, no mirror, no NTP. Services that
# the scenarios start themselves stay off; sshd's host keys are made per host at first boot.
rm -f "$root/etc/resolv.conf" "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Make sshd host keys (vagrant box)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable ssh-hostkeys.service ssh.service >/dev/null 2>&1
chroot "$root" systemctl disable unbound.service nginx.service docker.service docker.socket \
  containerd.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
echo "debian" >"$root/etc/hostname"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/*

(cd "$tmp" && tar --numeric-owner --xattrs -czf rootfs.tar.gz ./rootfs)
cp "$here/lxc-config" "$tmp/lxc-config"
printf '{"provider": "lxc", "version": "1.0.0", "built-on": "%s"}\n' "$(date -u +%FT%TZ)" \
  >"$tmp/metadata.json"
tar -C "$tmp" -cf "$box.tmp" rootfs.tar.gz lxc-config metadata.json
mv "$box.tmp" "$box"
touch "$dir/.complete"
echo "$box"
