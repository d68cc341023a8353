#!/usr/bin/env bash
# The README's test command: installs every dependency (Debian packages), builds, and runs the
# whole test suite with ctest; then builds the unit tests and fuzz replays again with ASan and
# UBSan and runs them. Tests that need root or BPF report SKIPPED without them.
#   scripts/test.sh                 # build in ./build (and ./build-asan) and run every test
#   BUILD_DIR=dir scripts/test.sh   # another build directory (and dir-asan)
#   CTEST_ARGS="-R unit" scripts/test.sh
#   SANITIZE=0 scripts/test.sh      # skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
cmake --build "$build"
# shellcheck disable=SC2086
(cd "$build" && ctest --output-on-failure --timeout 600 ${CTEST_ARGS:-})

if [ "${SANITIZE:-1}" != 0 ]; then
  echo "=== sanitizer pass: unit tests and fuzz corpora with ASan + UBSan"
  asan=$build-asan
  # -O1 -g1: what ASan recommends, and much quicker to compile than -O2 -g. Debug's flags are
  # replaced (an empty build type would become RelWithDebInfo, whose -O2 -g comes last and wins);
  # Debug also leaves assert() on.
  cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
    -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" -DELASTICDNS_SANITIZE=ON
  cmake --build "$asan" --target sanitizer_suite
  (cd "$asan" && ctest --output-on-failure --timeout 600 -R '^(unit|fuzz)\.')
fi
