#!/usr/bin/env bash
# Builds the sanitizer build of tests/fuzz (clang, ASan and UBSan) and runs its tests: the unit
# tests, then each libFuzzer target for a bounded time (see README.md).
#
# Environment (all optional):
#   BUILD_FUZZ               build tree (default: <repo>/build-fuzz)
#   AGENTWALL_FUZZ_SECONDS   seconds per fuzzer (default 20)
#   JOBS                     parallel compile jobs, and tests run at once (default: nproc)
#   FUZZ_CXX                 clang++ to use (default: clang++)
# Arguments are passed to ctest, e.g. `tests/fuzz/run.sh -R fuzz.sse` or `-L unit`; the one
# argument --build-only builds without running anything.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_FUZZ:-$root/build-fuzz}"
seconds="${AGENTWALL_FUZZ_SECONDS:-20}"

cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-clang++}" \
  -DAGENTWALL_FUZZ_SECONDS="$seconds"
cmake --build "$build" -j"${JOBS:-$(nproc)}"
# --build-only: configure and build, run nothing (tests/run_all.sh builds while other tests run).
if [ "${1:-}" = "--build-only" ]; then exit 0; fi
cd "$build"
# The unit tests and the fuzzers are independent processes (temp dirs of their own, no ports
# or kernel state): they run JOBS at a time, which halves this step on two cores.
AGENTWALL_FUZZ_SECONDS="$seconds" ctest --output-on-failure -j"${JOBS:-$(nproc)}" "$@"
