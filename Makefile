# The README's two commands: `make demo` and `make test`. Each creates .venv and installs
# bnexp into it first (once; again when pyproject.toml changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MNIST ?= ../shared/data/mnist

.PHONY: demo test bench reproduce clean

demo: $(VENV)/.installed
	$(BIN)/bnexp train configs/quickstart.yaml

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.created
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $@ $(VENV)/.installed

# Issue 5's speed benchmark: bnexp train against Keras fit and a hand-written floor.
bench: $(VENV)/.installed
	$(BIN)/python bench/speed.py --data-dir $(MNIST) --json bench/out/speed.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
