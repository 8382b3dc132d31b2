# Course set-up and checks. `make lab` opens the course, `make test` checks everything.
# Both create the virtual environment .venv first when it is missing or out of date.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/constraints.txt

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg

.PHONY: setup lab test lint bench lock clean

setup: $(STAMP)

# Reinstall only when the dependency list or the lock file changed.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup lint
	$(BIN)/python -m pytest tests corrlib notebooks --doctest-modules $(NBVAL)

bench: setup
	$(BIN)/python benchmarks/run_all.py

# Re-pin the lock file to what .venv holds now (after a deliberate upgrade).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^corrlib' > $(LOCK)

clean:
	rm -rf build .pytest_cache .ruff_cache
