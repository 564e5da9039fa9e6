# Every target sets itself up: it creates .venv when missing and (re)installs the pinned requirements
# whenever requirements*.txt or pyproject.toml change.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow

.PHONY: run test test-fast lint bench-setup setup clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

## The main job: news-topic classification on BBC News (see README.md).
run: $(STAMP)
	$(PY) experiments/news_classification.py $(ARGS)

## The test suite (what CI runs): two pytest workers, a whole test file per worker at a time; the 25 slowest
## tests are listed at the end.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25 $(PYTEST_ARGS)

## The inner loop: everything except the tests marked slow (subprocesses, other backends, notebooks, experiments).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow" $(PYTEST_ARGS)

## Peers for benchmarks/ (keras-hub); then e.g. `.venv/bin/python benchmarks/generation.py`.
bench-setup: $(STAMP)
	$(PY) -m pip install -q -r requirements-bench.txt

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
