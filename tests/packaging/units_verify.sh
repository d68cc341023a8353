#!/usr/bin/env bash
# pkg.units_verify: `cmake --install` into a temporary DESTDIR (prefix /usr, as in the .deb),
# then `systemd-analyze verify` on the installed units. verify resolves ExecStart= and every
# dependency inside --root, so the root holds the installed files plus this host's own
# systemd units (sysinit.target, sockets.target, ...). Fails on any message from verify.
#   units_verify.sh <build dir>
set -euo pipefail
build=$1
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

DESTDIR=$tmp/root cmake --install "$build" --prefix /usr >"$tmp/install.log"
units=(elasticdns-agent.service elasticdns-agent.socket elasticdns-central.service)
unit_dir=$tmp/root/usr/lib/systemd/system
for u in "${units[@]}"; do
  [ -f "$unit_dir/$u" ] || { echo "FAIL: $u not installed"; cat "$tmp/install.log"; exit 1; }
done
for bin in usr/sbin/elasticdns-agent usr/bin/elasticdns-central usr/bin/elasticdnsctl; do
  [ -x "$tmp/root/$bin" ] || { echo "FAIL: /$bin not installed"; exit 1; }
done
[ -f "$tmp/root/etc/elasticdns/agent.yml" ] || { echo "FAIL: no /etc/elasticdns/agent.yml"; exit 1; }
[ -d "$tmp/root/var/lib/elasticdns" ] || { echo "FAIL: no state directory"; exit 1; }

# This host's units, for the dependencies; ours are not overwritten (-n).
for d in /lib/systemd/system /usr/lib/systemd/system; do
  [ -d "$d" ] && cp -rn "$d/." "$unit_dir/" 2>/dev/null || true
done
mkdir -p "$tmp/root/bin"
cp /bin/sh /bin/kill /bin/mkdir "$tmp/root/bin/"  # ExecReload=, ExecStartPre=

out=$(cd "$unit_dir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$tmp/root" \
  "${units[@]/#/$unit_dir/}" 2>&1) || { echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify printed:"
  echo "$out"
  exit 1
fi
# The security exposure of each service, for the record (no systemd here to ask for it live).
for u in elasticdns-agent.service elasticdns-central.service; do
  SYSTEMD_LOG_LEVEL=err systemd-analyze security --offline=true --root="$tmp/root" "$unit_dir/$u" 2>/dev/null |
    tail -1 | sed "s/^/$u: /" || true
done
echo "PASS: ${units[*]} verified"
