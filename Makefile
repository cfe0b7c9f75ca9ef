# Two commands do all the set-up on a fresh machine (Python 3.11 with venv):
#   make demo   installs cribsight in .venv and runs the embedded demo
#   make test   installs the dev and train extras in .venv and runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,train]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/cribsight demo --out out/demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/cribsight bench

clean:
	rm -rf $(VENV) out
