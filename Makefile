# mechscope: the two commands of the quick start (make run, make test) and make bench.
# Each installs the Debian packages it is missing (scripts/install-deps.sh), then builds.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
MECHSCOPE = $(BUILD)/app/mechscope

.PHONY: all deps configure build run run-gui run-headless test bench fuzz fuzz-smoke clean

all: build

deps:
	@scripts/install-deps.sh

# The compiler, chosen when $(BUILD) is first configured: clang (scripts/install-deps.sh installs
# clang-14) unless MECHSCOPE_CXX names another. Clang's precompiled LibTorch header carries its
# template instantiations (-fpch-instantiate-templates), which GCC redoes in every file (about 5 s of
# CPU each), so a cold build takes about half the time. MECHSCOPE_CXX=g++ make test builds with GCC.
configure: deps
	@cxx="$${MECHSCOPE_CXX:-$$(command -v clang++-14 || command -v clang++ || true)}"; flag=""; \
	 if [ ! -f $(BUILD)/CMakeCache.txt ] && [ -n "$$cxx" ]; then flag="-DCMAKE_CXX_COMPILER=$$cxx"; fi; \
	 cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $$flag $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The main job: with a display (DISPLAY set) the workbench on the bundled default model
# (docs/gui.md); without one the example batch job (resources/jobs/example.toml: attention sinks,
# retrieval heads and induction heads on the default model) into a fresh database under
# build/run/, which exports the HTML report.
RUN_DIR = $(BUILD)/run
DEFAULT_MODEL = resources/models/default
run: build
	@if [ -n "$$DISPLAY" ]; then $(MAKE) --no-print-directory run-gui; else $(MAKE) --no-print-directory run-headless; fi

run-gui: build
	$(MECHSCOPE) gui --model $(DEFAULT_MODEL)

run-headless: build
	@rm -rf $(RUN_DIR) && mkdir -p $(RUN_DIR)
	$(MECHSCOPE) info --model $(DEFAULT_MODEL) | head -13
	cd $(RUN_DIR) && $(CURDIR)/$(MECHSCOPE) batch $(CURDIR)/resources/jobs/example.toml --db mechscope.db
	$(MECHSCOPE) runs --db $(RUN_DIR)/mechscope.db
	@echo "report: $(RUN_DIR)/example-report.html"

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	@scripts/bench.sh $(BUILD)

# libFuzzer targets (fuzz/, docs/fuzzing.md) in their own clang + ASan/UBSan build; fuzz-smoke runs
# each for FUZZ_SECONDS. CI replays their corpora through test_fuzz_regressions instead (make test).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
fuzz: build
	@scripts/install-deps.sh clang-14 libclang-rt-14-dev
	@cmake -S fuzz -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DMECHSCOPE_MAIN_BUILD=$(abspath $(BUILD)) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target mechscope_fuzz_targets

fuzz-smoke: fuzz
	@FUZZ_SEED=$(FUZZ_SEED) scripts/fuzz.sh smoke $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
