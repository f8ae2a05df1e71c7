# Two commands for a fresh clone: `make test` and `make train`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-soak test-slow train lint bench

$(PY):
	python3 -m venv $(VENV)

# torch first: 2.13.0 is the CPU build on this machine's disk; the package's torch range accepts it.
$(STAMP): $(PY) pyproject.toml setup.py
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# One pytest worker per core (pytest-xdist `-n auto`); `worksteal` lets an idle worker take queued tests, so the long
# crash/resume tests do not all end up behind each other. Each worker's torch runs single-threaded (OMP_NUM_THREADS=1,
# as train.yaml's torch_threads), so two workers do not oversubscribe two cores.
PYTEST := WANDB_MODE=disabled MUJOCO_GL=egl OMP_NUM_THREADS=1 $(PY) -m pytest -n auto --dist worksteal

test: $(STAMP)
	$(PYTEST) -q -m "not slow"

# The soak (100+ random valid configs, hypothesis): CI's second step after `make test`.
test-soak: $(STAMP)
	$(PYTEST) -q -m slow tests/reliability/test_soak.py

# Every slow test: the soak, the SIGKILL/resume matrix of the remaining algorithms, the joblib sweep.
test-slow: $(STAMP)
	$(PYTEST) -q -m slow

train: $(STAMP)
	$(PY) -m msol.train env=taxi

lint: $(STAMP)
	$(VENV)/bin/ruff check msol envs baselines tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py
