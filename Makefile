# Two entry points a fresh machine needs: `make demo` and `make test`.
# Both create the virtual environment on first use; nothing else is assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean install browser fuzz slow

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/orcon demo

# Headless Chromium (Debian's package) for the audit report's browser test.
browser:
	bash scripts/install-chromium.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Long modes, never part of `make test`: fuzzing and load/fault runs at full size.
fuzz: $(STAMP)
	ORCON_FUZZ_LONG=1 $(BIN)/python -m pytest -q tests/fuzz

slow: $(STAMP)
	ORCON_SLOW=1 $(BIN)/python -m pytest -q tests/faults tests/load

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/orcon bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
