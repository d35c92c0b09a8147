# p1mqtt developer commands. Everything runs inside a local virtual environment (.venv)
# that is created and filled on first use; only python3 (>= 3.11, with venv) and make are needed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help venv test lint typecheck unit demo bench clean

help:
	@echo "make demo   - simulated meter -> p1mqtt -> embedded broker, prints every MQTT message"
	@echo "make test   - ruff, mypy (strict) and the whole pytest suite"
	@echo "make bench  - decoder and end-to-end benchmarks (prints figures)"
	@echo "make clean  - remove the virtual environment and caches"

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "p1mqtt needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/p1mqtt demo

bench: $(STAMP)
	$(BIN)/python bench/decoder.py
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build src/*.egg-info
