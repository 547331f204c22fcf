# mechscope: the two commands of the quick start (make run, make test) and make bench.
# Each installs the Debian packages it is missing (scripts/install-deps.sh), then builds.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
MECHSCOPE = $(BUILD)/app/mechscope
RUN_MODEL = $(BUILD)/run/tiny-gpt2

.PHONY: all deps configure build run test bench clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The main job on a tiny model the project generates (the bundled default model comes with issue 3).
run: build
	@$(MECHSCOPE) zoo random --arch gpt2 --n-layers 2 --d-model 64 --n-heads 4 --d-vocab 512 \
	  --seed 1 --out $(RUN_MODEL) --force
	$(MECHSCOPE) info --model $(RUN_MODEL)
	$(MECHSCOPE) forward --model $(RUN_MODEL) --tokens 1,2,3,4,5,6,7,8 --top-k 5

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	@scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD)
