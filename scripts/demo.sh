#!/usr/bin/env bash
# The README's "run it" command. As root on Debian 12: installs what is missing (Debian packages),
# builds elasticdns-central and elasticdns-agent if they are not built yet, then runs the demo:
# central + one agent on this machine inside a private network-namespace world (no route off the
# machine), web and api in v1 and v2 as containers, and the dig answers that show versioned
# routing. It stops everything it started before it exits (also on Ctrl-C or an error).
#   scripts/demo.sh           # run the demo, print the answers, stop
#   scripts/demo.sh --hold    # ... and keep it running until Enter is pressed
#   BUILD_DIR=dir scripts/demo.sh
#   ELASTICDNS_DEMO_BINARIES=dir scripts/demo.sh   # (tests) when nothing is built yet, copy
#                             elasticdns-central and elasticdns-agent from dir instead of building
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it creates network namespaces and cgroups and loads eBPF)" >&2
  exit 1
fi

bash scripts/install-deps.sh
build=${BUILD_DIR:-build}
# Prints the path of the built program $1, or nothing (also when $build does not exist yet: a
# fresh clone). -print -quit, not `| head`: no pipeline for pipefail to fail.
find_binary() {
  [ -d "$build" ] && find "$build" -name "$1" -type f -perm -u+x -print -quit 2>/dev/null
  return 0
}
central=$(find_binary elasticdns-central)
agent=$(find_binary elasticdns-agent)
if [ -z "$central" ] || [ -z "$agent" ]; then
  if [ -n "${ELASTICDNS_DEMO_BINARIES:-}" ]; then
    echo "demo: nothing built in $build; copying the programs from $ELASTICDNS_DEMO_BINARIES"
    mkdir -p "$build"
    cp "$ELASTICDNS_DEMO_BINARIES/elasticdns-central" "$ELASTICDNS_DEMO_BINARIES/elasticdns-agent" \
      "$build/"
  else
    echo "demo: building elasticdns-central and elasticdns-agent in $build"
    [ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$build" --target elasticdns-central elasticdns-agent
  fi
  central=$(find_binary elasticdns-central)
  agent=$(find_binary elasticdns-agent)
fi
if [ -z "$central" ] || [ -z "$agent" ]; then
  echo "demo: the build produced no elasticdns-central/elasticdns-agent; cannot run the demo" >&2
  exit 1
fi

exec /usr/bin/python3 tests/integration/dc/demo.py --central "$central" --agent "$agent" "$@"
