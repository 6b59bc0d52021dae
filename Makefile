# Developer entry points. `make run` and `make test` work on a fresh Debian 12 machine
# as root: they install what is missing, build, and run.
BUILD ?= build
BUILD_FUZZ ?= build-fuzz
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps test-deps build run sniff test unit integration sanitize fuzz bench eval package format clean

all: build

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh --test

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

# The agent's main job, in the foreground, on the configuration files or the built-in
# default (monitor only), with every event printed on the terminal.
run: build
	exec $(BUILD)/agentwall run --events -

sniff: build
	exec $(BUILD)/agentwall sniff

# Every test: integration (real BPF, root), system, CLI and benchmark smoke tests in the main
# build, then, in the sanitizer build (clang, AddressSanitizer and UndefinedBehaviorSanitizer),
# the unit tests and the fuzzers. The unit tests run there only: the main tree does not build
# them (AGENTWALL_UNIT_TESTS=OFF), which was over half of its compile time, and compiles it
# without debug information (AGENTWALL_DEBUG_INFO=OFF). The sanitizer build compiles, at the
# lowest CPU priority, while the main build's tests run (tests/run_all.sh).
test: test-deps
	cmake -S . -B $(BUILD) -DAGENTWALL_UNIT_TESTS=OFF -DAGENTWALL_DEBUG_INFO=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)
	BUILD=$(abspath $(BUILD)) BUILD_FUZZ=$(abspath $(BUILD_FUZZ)) JOBS=$(JOBS) tests/run_all.sh

# The unit tests in the main build (GCC, -O2), without sanitizers.
unit: deps
	cmake -S . -B $(BUILD) -DAGENTWALL_UNIT_TESTS=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS) --target unit_tests
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: test-deps build
	cd $(BUILD) && ctest --output-on-failure -L integration

# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer, in the sanitizer build.
sanitize: deps
	BUILD_FUZZ=$(abspath $(BUILD_FUZZ)) JOBS=$(JOBS) tests/fuzz/run.sh -L unit

# The sanitizer build (tests/fuzz, $(BUILD_FUZZ)): the unit tests, then each libFuzzer target
# for AGENTWALL_FUZZ_SECONDS (default 20).
fuzz: test-deps
	BUILD_FUZZ=$(abspath $(BUILD_FUZZ)) JOBS=$(JOBS) tests/fuzz/run.sh

bench: test-deps build
	BUILD_DIR=$(abspath $(BUILD)) tests/bench/run.sh

# Recall, false-positive rate and latency of `agentwall scan` on ../shared/eval/*.jsonl,
# which disguises (leetspeak, letters spaced out, base64, ...) still hide attacks, and how
# many chunks of this machine's ordinary files (code, READMEs, licences) a tool's result
# would be flagged for.
eval: build
	tests/eval/run.py --agentwall $(BUILD)/agentwall $(EVAL_ARGS)
	tests/eval/evasion.py --agentwall $(BUILD)/agentwall
	tests/eval/files.py --agentwall $(BUILD)/agentwall
	tests/eval/files.py --agentwall $(BUILD)/agentwall --role user

# The Debian package, $(BUILD)/agentwall_VERSION_ARCH.deb (packaging/README.md). Builds the
# agent and its man pages only, not the tests.
package: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS) --target agentwall
	cd $(BUILD) && cpack -G DEB

format:
	clang-format -i $$(git ls-files '*.cc' '*.h' '*.c')

clean:
	rm -rf $(BUILD) $(BUILD_FUZZ)
