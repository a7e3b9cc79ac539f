# Entry points for people and CI. The build itself is CMake; this file only
# strings the steps together.
#
#   make test    install missing Debian packages, build, run every test
#   make test-torch2  the same against PyPI's LibTorch 2.x (CUDA code
#                compiled) in build-torch2/; installs the reference
#                environment first (scripts/install-reference.sh)
#   make reference   install the reference environment only
#   make demo    ... then generate the demo preference pairs, train a tokenizer
#                and a reward model from scratch, evaluate it, score examples
#   make install PREFIX=/opt/openrm
#   make bench   run the benchmark programs (they need ../shared/data)
#   make fuzz    run the fuzzers (fuzz/run.sh; installs clang first)
#   make clean

BUILD_DIR ?= build
PREFIX    ?= /usr/local
JOBS      ?= $(shell nproc)

CMAKE_ARGS := -G Ninja -DCMAKE_BUILD_TYPE=Release
# Decided when the recipe runs, not when make reads this file: on a fresh
# machine ccache only exists once `deps` has run.
CCACHE_ARG = $$(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Needed for ccache to cache the TUs that use the precompiled headers;
# base_dir makes hits survive a checkout in another folder (a fresh CI clone).
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_BASEDIR := $(CURDIR)

TORCH2_BUILD_DIR ?= build-torch2

.PHONY: all deps build test test-torch2 reference demo install bench fuzz clean

all: build

deps:
	bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_ARGS) $(CCACHE_ARG)
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-torch2: deps
	bash scripts/test-torch2.sh $(TORCH2_BUILD_DIR)

reference:
	bash scripts/install-reference.sh

demo: build
	bash demo/run_demo.sh $(BUILD_DIR)

install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

bench: build
	$(BUILD_DIR)/bench/bench_tokenize --json $(BUILD_DIR)/bench_tokenize.json
	$(BUILD_DIR)/bench/bench_hf_tokenize --json $(BUILD_DIR)/bench_hf_tokenize.json
	$(BUILD_DIR)/bench/bench_train --json $(BUILD_DIR)/bench_train.json
	$(BUILD_DIR)/bench/bench_score --json $(BUILD_DIR)/bench_score.json
	$(BUILD_DIR)/bench/bench_serve --json $(BUILD_DIR)/bench_serve.json

fuzz:
	bash scripts/install-deps.sh --fuzz
	bash fuzz/run.sh

clean:
	rm -rf $(BUILD_DIR) $(TORCH2_BUILD_DIR)
