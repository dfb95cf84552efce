# Thin wrapper over CMake and the test scripts. Every target here does real work; see README.md.
BUILD       ?= build
JOBS        ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CTEST_TIERS ?= unit|loop|integration
GEN         := $(shell command -v ninja >/dev/null 2>&1 && echo -G Ninja)

.PHONY: all deps test test-c test-e2e test-asan fuzz clusters-up clusters-down demo bench clean deb test-packaging

all:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(GEN) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

# Installs every build and test dependency (Debian packages, JDK 17, Maven jars, Python venv). Idempotent.
deps:
	bash .ci/deps.sh

# Every test tier that exists: C tiers through ctest, then the end-to-end tier against real Cassandra.
test: test-c test-e2e test-packaging

test-c: all
	ctest --test-dir $(BUILD) -L '$(CTEST_TIERS)' --output-on-failure -j$(JOBS)

test-e2e: all
	bash tests/e2e/run.sh

# The C tiers again under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	@test -f $(BUILD)/asan/CMakeCache.txt || cmake -S . -B $(BUILD)/asan $(GEN) -DCMAKE_BUILD_TYPE=Asan
	cmake --build $(BUILD)/asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD)/asan -L '$(CTEST_TIERS)' --output-on-failure -j$(JOBS)

# Each libFuzzer target for FUZZ_SECONDS under ASan + UBSan (clang).
fuzz:
	@test -f $(BUILD)/fuzz/CMakeCache.txt || CC=clang cmake -S . -B $(BUILD)/fuzz $(GEN) \
	  -DCMAKE_BUILD_TYPE=Asan -DTANDEM_FUZZ=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
	cmake --build $(BUILD)/fuzz -j$(JOBS)
	bash tests/fuzz/run.sh $(BUILD)/fuzz/fuzz $(FUZZ_SECONDS)

# Debian binary package in build/deb/ (dpkg-buildpackage on a staged copy of the tree; packaging/build-deb.sh).
deb:
	bash packaging/build-deb.sh

# Packaging checks: unit, alert rules, dashboard, man pages, `make deb` + lintian, install/remove as root.
test-packaging: all
	BUILD=$(BUILD) bash packaging/test.sh

# The benchmark suite: direct vs tandem on two mock nodes, idle-connection memory, then the real clusters
# when they are up; writes $(BUILD)/bench/results.json. See docs/performance.md.
bench: all
	bash tests/bench/run.sh $(BUILD)

clusters-up:
	bash tests/cassandra/clusters.sh up

clusters-down:
	bash tests/cassandra/clusters.sh down

# Migration phases 1, 3, 4 and 5 on the two real clusters with a small workload through tandem;
# prints where the data is at each step, exits non-zero if a check fails. See tests/demo/run.sh.
demo: all
	BUILD=$(BUILD) bash tests/demo/run.sh

clean:
	rm -rf $(BUILD)/CMakeCache.txt $(BUILD)/CMakeFiles $(BUILD)/asan $(BUILD)/fuzz $(BUILD)/tests
