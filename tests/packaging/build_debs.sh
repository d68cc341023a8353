#!/usr/bin/env bash
# pkg.build_debs (fixture of the package tests): builds the elasticdns .deb twice with CPack,
# at the project's version and at a higher one, into <build>/pkg-test/{old,new}.deb, and
# checks what a Debian package must carry: binaries, units, conffiles, maintainer scripts,
# Depends from dpkg-shlibdeps.
#   build_debs.sh <build dir> <project version>
set -euo pipefail
build=$1
version=$2
out=$build/pkg-test
command -v cpack >/dev/null && command -v dpkg-deb >/dev/null && command -v dpkg-shlibdeps >/dev/null ||
  { echo "SKIP: cpack, dpkg-deb or dpkg-shlibdeps missing"; exit 77; }
rm -rf "$out"
mkdir -p "$out"
for v in "$version" "$version+upgrade1"; do
  (cd "$out" && cpack --config "$build/CPackConfig.cmake" -G DEB -R "$v" -B "$out/cpack" >"$out/cpack-$v.log" 2>&1) ||
    { echo "FAIL: cpack -R $v"; cat "$out/cpack-$v.log"; exit 1; }
done
arch=$(dpkg --print-architecture)
mv "$out/cpack/elasticdns_${version}-1_${arch}.deb" "$out/old.deb"
mv "$out/cpack/elasticdns_${version}+upgrade1-1_${arch}.deb" "$out/new.deb"
rm -rf "$out/cpack"

fail() { echo "FAIL: $*"; exit 1; }
deb=$out/old.deb
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/sbin/elasticdns-agent ./usr/bin/elasticdns-central ./usr/bin/elasticdnsctl \
  ./usr/lib/systemd/system/elasticdns-agent.service ./usr/lib/systemd/system/elasticdns-agent.socket \
  ./usr/lib/systemd/system/elasticdns-central.service ./etc/elasticdns/agent.yml \
  ./etc/elasticdns/central.yml ./usr/share/doc/elasticdns/README.md \
  ./usr/share/doc/elasticdns/agent/README.md ./usr/share/doc/elasticdns/central/README.md; do
  grep -qxF "$f" <<<"$contents" || fail "$f missing from the package"
done
ctrl=$(mktemp -d)
trap 'rm -rf "$ctrl"' EXIT
dpkg-deb -e "$deb" "$ctrl"
for s in postinst prerm postrm; do [ -x "$ctrl/$s" ] || fail "no executable $s"; done
[ "$(sort "$ctrl/conffiles")" = "$(printf '/etc/elasticdns/agent.yml\n/etc/elasticdns/central.yml')" ] ||
  fail "conffiles: $(cat "$ctrl/conffiles")"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libsystemd0 libsqlite3 libyaml-cpp libldns; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
[ "$(dpkg-deb -f "$out/new.deb" Version)" = "$version+upgrade1-1" ] || fail "new.deb version"
dpkg --compare-versions "$(dpkg-deb -f "$out/new.deb" Version)" gt "$(dpkg-deb -f "$deb" Version)" ||
  fail "new.deb is not newer"
echo "Depends: $depends"
ls -l "$out"/*.deb
echo "PASS: packages built"
