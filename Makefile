# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs the project (and everything it needs) into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch, installed before the project so that the project's `torch>=...`
# is already satisfied (a plain `pip install torch` fetches a multi-GB CUDA build).
# Override on another machine, e.g. `make test TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
PIP_FLAGS ?= -q --disable-pip-version-check
PYTEST_ARGS ?= -n 2

.PHONY: help venv demo test test-fast lint docs bench clean

help:
	@echo "make demo   - run the similarity chain on built-in synthetic music"
	@echo "make test   - run the test suite (doctests included, slow tests too)"
	@echo "make test-fast - the suite without the tests marked slow"
	@echo "make lint   - ruff check and ruff format --check"
	@echo "make docs   - build the sphinx site with the executed example gallery"
	@echo "make bench  - run the benchmarks under benchmarks/"

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) "$(TORCH_SPEC)"
	$(PY) -m pip install $(PIP_FLAGS) -e ".[dev,docs]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m sklearn_music demo

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

docs: venv
	$(MAKE) -C docs html SPHINXOPTS="-W --keep-going" PYTHON=$(abspath $(PY))

bench: venv
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build docs/auto_examples docs/generated
