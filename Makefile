# mechscope: the two commands of the quick start (make run, make test) and make bench.
# Each installs the Debian packages it is missing (scripts/install-deps.sh), then builds.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
MECHSCOPE = $(BUILD)/app/mechscope

.PHONY: all deps configure build run run-gui run-headless test bench clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The main job, on a model the project builds itself (the trained default model comes with the
# zoo): construct the `sink` model, show it, run the sink analysis on its check prompts into a
# fresh database, and export the HTML report.
RUN_DIR = $(BUILD)/run
# With a display (DISPLAY set) `make run` opens the workbench instead (docs/gui.md).
run: build
	@if [ -n "$$DISPLAY" ]; then $(MAKE) --no-print-directory run-gui; else $(MAKE) --no-print-directory run-headless; fi

DEFAULT_MODEL = resources/models/default
run-gui: build
	@if [ -d $(DEFAULT_MODEL) ]; then $(MECHSCOPE) gui --model $(DEFAULT_MODEL); else \
	  mkdir -p $(RUN_DIR) && $(MECHSCOPE) zoo construct sink --out $(RUN_DIR)/sink --force >/dev/null && \
	  $(MECHSCOPE) gui --model $(RUN_DIR)/sink --db $(RUN_DIR)/mechscope.db; fi

run-headless: build
	@rm -rf $(RUN_DIR) && mkdir -p $(RUN_DIR)
	$(MECHSCOPE) zoo construct sink --out $(RUN_DIR)/sink
	$(MECHSCOPE) info --model $(RUN_DIR)/sink | head -13
	$(MECHSCOPE) sinks --model $(RUN_DIR)/sink --prompts resources/prompts/sink-check.jsonl \
	  --hidden-threshold rel:5 --db $(RUN_DIR)/mechscope.db --top 5
	$(MECHSCOPE) report --db $(RUN_DIR)/mechscope.db --run 1 --format html --out $(RUN_DIR)/report.html
	@echo "report: $(RUN_DIR)/report.html"

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	@scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD)
