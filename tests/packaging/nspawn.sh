#!/usr/bin/env bash
# Boots a Debian 12 system container (systemd as PID 1) with systemd-nspawn over a
# debootstrap'd root (rootfs.sh, cached) in its own network namespace that has only a
# loopback interface (--private-network: no route off the machine), and runs
# inside.sh <mode> in it as a unit once the system is up. The container powers off
# when the script ends; its verdict and log come back through the root directory.
#   nspawn.sh <build dir> <lifecycle|restart>
# Needs root, systemd-nspawn and debootstrap (scripts/install-deps.sh); exits 77 without.
set -euo pipefail
build=$1
mode=$2
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for tool in systemd-nspawn debootstrap; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (scripts/install-deps.sh)"; exit 77; }
done
debs=$build/pkg-test
[ -f "$debs/old.deb" ] && [ -f "$debs/new.deb" ] || { echo "FAIL: run pkg.build_debs first"; exit 1; }

cache_root=$(bash "$here/rootfs.sh")
tmp=$(mktemp -d /var/tmp/elasticdns-pkg.XXXXXX)
machine="edns-$mode-$$"
nspawn_pid=
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true  # nspawn powers the container off
    for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  mountpoint -q "$tmp/bpffs" && umount "$tmp/bpffs"
  rm -rf "$tmp"
}
trap cleanup EXIT

cp -a --reflink=auto "$cache_root" "$tmp/root"
# A bpffs of the container's own (a new instance, not the host's /sys/fs/bpf): the agent pins
# its programs there; unmounted by cleanup(), which frees whatever was left in it.
mkdir -p "$tmp/bpffs"
bpf_args=()
if mount -t bpf bpf "$tmp/bpffs" 2>/dev/null; then
  bpf_args=(--bind="$tmp/bpffs:/sys/fs/bpf" --capability=CAP_BPF,CAP_PERFMON
    --system-call-filter=bpf)
else
  echo "note: cannot mount a bpffs here: the container runs the agent without eBPF"
fi
root=$tmp/root
mkdir -p "$root/pkgtest" "$root/var/log/journal"  # a persistent journal, read on failure
cp "$debs/old.deb" "$debs/new.deb" "$here/inside.sh" "$root/pkgtest/"
cat >"$root/etc/systemd/system/elasticdns-pkgtest.service" <<UNIT
[Unit]
Description=ElasticDNS package test ($mode)
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/bash -c '/pkgtest/inside.sh $mode >/pkgtest/log 2>&1; echo \$? >/pkgtest/rc'
ExecStartPost=/bin/systemctl poweroff --no-block
TimeoutStartSec=300

[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/elasticdns-pkgtest.service \
  "$root/etc/systemd/system/multi-user.target.wants/elasticdns-pkgtest.service"

start=$(date +%s)
timeout --kill-after=15 360 systemd-nspawn --quiet --boot --private-network --register=no --keep-unit \
  --machine="$machine" --directory="$root" --console=pipe "${bpf_args[@]}" </dev/null >"$tmp/console.log" 2>&1 &
nspawn_pid=$!
wait "$nspawn_pid" || true
nspawn_pid=
echo "container ran $(($(date +%s) - start)) s"
cat "$root/pkgtest/log" 2>/dev/null || { echo "no log; console:"; tail -50 "$tmp/console.log"; }
rc=$(cat "$root/pkgtest/rc" 2>/dev/null || echo none)
if [ "$rc" != 0 ]; then
  echo "FAIL: inside.sh $mode exited $rc"
  echo "--- journal of the container (last 80 lines)"
  journalctl -D "$root/var/log/journal" --no-pager -n 80 2>/dev/null || tail -80 "$tmp/console.log"
  exit 1
fi
echo "PASS: $mode"
