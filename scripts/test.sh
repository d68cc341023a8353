#!/usr/bin/env bash
# The README's test command: installs every dependency (Debian packages), builds, and runs the
# whole test suite with ctest. Tests that need root or BPF report SKIPPED without them.
#   scripts/test.sh                 # build in ./build and run every test
#   BUILD_DIR=dir scripts/test.sh   # another build directory
#   CTEST_ARGS="-R unit" scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
cmake --build "$build"
cd "$build"
# shellcheck disable=SC2086
ctest --output-on-failure --timeout 600 ${CTEST_ARGS:-}
