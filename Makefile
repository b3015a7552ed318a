# Two commands for a fresh machine:  make demo  (the main job end to end)  and  make test.
# Setup is idempotent: it reinstalls only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup system test lint demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev,coco]'
	touch $(STAMP)

# Servers and browser used by the scale-out and web-report tests (redis-server, chromium).
system:
	./scripts/install-system.sh

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Two workers (pytest-xdist), one test file each at a time: most tests wait on servers, child
# processes or one-thread training, so two of them share a 2-core machine well. A plain
# `pytest` runs serially.
test: setup system lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

demo: setup
	./scripts/demo.sh

bench: setup
	$(PY) bench/train_quality.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
