# Two entry points a fresh machine needs: `make demo` and `make test`.
# Both create the virtual environment on first use; nothing else is assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean install browser fuzz slow lock

# Installs come from requirements.lock (exact versions, every file's hash), so a fresh
# machine gets what CI tested; orcon itself is then added without resolving anything.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
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
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/orcon bench

# Upgrading a dependency is a deliberate act: edit the range in pyproject.toml, then
# re-lock (uv resolves for CPython 3.11 on x86_64 Linux, hashes for every file).
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --extra interop --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
