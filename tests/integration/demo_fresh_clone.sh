#!/usr/bin/env bash
# The README's "run it" command as a new user meets it: scripts/demo.sh in a copy of the source
# tree that has no build directory. The script must take its "nothing built yet" branch (with
# ELASTICDNS_DEMO_BINARIES it copies this build's programs there instead of compiling them
# again) and then show the versioned answers. Root only (the demo creates namespaces, cgroups
# and loads eBPF): SKIPPED (77) otherwise.
#   demo_fresh_clone.sh SOURCE_DIR CENTRAL_BINARY AGENT_BINARY
set -euo pipefail
src=$1 central=$2 agent=$3
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: the demo needs root (network namespaces, cgroups, eBPF)"
  exit 77
fi

work=$(mktemp -d /tmp/elasticdns-demo-clone.XXXXXX)
trap 'rm -rf "$work"' EXIT
clone=$work/elasticdns
bins=$work/bin
mkdir -p "$clone" "$bins"
# The tracked and not-ignored files, as a clone of this work tree would have them.
git -C "$src" ls-files -z --cached --others --exclude-standard |
  (cd "$src" && tar --null -T - -cf -) | tar -xf - -C "$clone"
[ ! -e "$clone/build" ] || { echo "FAIL: the copy has a build directory"; exit 1; }
cp "$central" "$agent" "$bins/"

out=$work/demo.out
rc=0
(cd "$work" && ELASTICDNS_DEMO_BINARIES=$bins timeout 300 bash "$clone/scripts/demo.sh") \
  >"$out" 2>&1 || rc=$?
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" -eq 0 ] || fail "scripts/demo.sh exited $rc on a tree with no build directory"
grep -q "nothing built in build; copying the programs" "$out" ||
  fail "the demo did not take its 'nothing built yet' branch"
# The answer printed after each question: v1 web → v1 api, v2 web → v2 api, then v2 for all.
answer_after() { grep -A4 -F -- "$1" "$out" | grep -E 'api\.cloud66\.local\.\s' | head -n 1; }
answer_after "it gets the v1 api ---" | grep -q '10\.77\.1\.20$' || fail "web-v1 did not get api v1"
answer_after "it gets the v2 api ---" | grep -q '10\.77\.1\.21$' || fail "web-v2 did not get api v2"
answer_after "the old web now gets v2 ---" | grep -q '10\.77\.1\.21$' ||
  fail "web-v1 did not get api v2 after the deploy"
grep -q "demo stopped; nothing left running." "$out" || fail "the demo did not stop cleanly"
echo "PASS: demo on a fresh tree"
