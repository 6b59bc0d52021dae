#!/usr/bin/env bash
# What `make test` runs once the main build is built: its CTest run (integration, system, CLI
# and benchmark smoke tests), then the sanitizer build's (unit tests and fuzzers,
# tests/fuzz/run.sh).
#
# The sanitizer build compiles while the main CTest run goes on, at the lowest CPU priority.
# That run is serial and mostly waits on clients, the agent and the kernel (test_enforce, its
# longest, keeps a sixth of two cores busy), so the compile takes the idle time, and the
# tests, at normal priority, go first whenever they want a CPU. It saves the compile's
# six minutes of the CI's thirty.
#
# Environment: BUILD and BUILD_FUZZ (build trees, absolute), JOBS (parallel compile jobs).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD:-$root/build}"
build_fuzz="${BUILD_FUZZ:-$root/build-fuzz}"
jobs="${JOBS:-$(nproc)}"
log="$(mktemp /tmp/agentwall-sanitizer-build.XXXXXX)"

# A process group of its own (set -m), so that an interrupt stops the whole compile.
set -m
BUILD_FUZZ="$build_fuzz" JOBS="$jobs" nice -n 19 "$root/tests/fuzz/run.sh" --build-only \
  >"$log" 2>&1 &
compile=$!
set +m
trap 'kill -- -"$compile" 2>/dev/null || true; rm -f "$log"' EXIT

# A failed test ends the run here, as it did before the overlap; the trap stops the compile.
(cd "$build" && ctest --output-on-failure)

echo "== the sanitizer build, compiled during the tests above (tests/fuzz/run.sh --build-only):"
if ! wait "$compile"; then
  cat "$log"
  echo "agentwall: the sanitizer build failed (its output is above)" >&2
  exit 1
fi
tail -n 3 "$log"
BUILD_FUZZ="$build_fuzz" JOBS="$jobs" "$root/tests/fuzz/run.sh"
