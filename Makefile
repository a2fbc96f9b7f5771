# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Installed only where the venv has no torch yet; users with a CUDA build keep theirs.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
# Two pytest workers, each with its own local Ray: while one waits on Ray (process starts, polls),
# the other computes. A module stays on one worker (--dist loadscope), so its fixtures run once.
TEST_WORKERS ?= 2
# One stamp per install: `make run` installs what a run needs, `make test` adds the dev extras;
# each reinstalls only when pyproject.toml changes.
RUN_STAMP := $(VENV)/.raykd-run-installed
DEV_STAMP := $(VENV)/.raykd-dev-installed
export RAY_USAGE_STATS_ENABLED ?= 0
# wandb logs each student offline (no key, no network); `make run WANDB_MODE=disabled` turns it off.
export WANDB_MODE ?= offline
# A local single-user cluster on 127.0.0.1; clusters you share keep Ray's token auth on.
export RAY_AUTH_MODE ?= disabled

.PHONY: setup setup-dev run test bench notebooks clean

define make_venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
endef

setup: $(RUN_STAMP)

setup-dev: $(DEV_STAMP)

$(RUN_STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/pip install -q -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/pip install -q -e ".[dev]"
	touch $(DEV_STAMP) $(RUN_STAMP)

run: setup
	$(BIN)/python pipelines/ensemble_to_student.py $(ARGS)

test: setup-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --durations=15 $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/kd_vs_baseline.py
	$(BIN)/python benchmarks/strategies.py
	$(BIN)/python benchmarks/teachers.py
	$(BIN)/python benchmarks/soft_targets.py

# Re-runs notebooks/*.ipynb with their full settings and saves their outputs in place (minutes; the
# tests run them on small settings).
notebooks: setup-dev
	env -u RAYKD_NOTEBOOK_SMALL $(BIN)/jupyter-execute --inplace notebooks/*.ipynb

clean:
	rm -rf $(VENV) runs .pytest_cache
