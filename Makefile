# Course set-up and checks. `make lab` opens the course, `make test` checks everything.
# Both create the virtual environment .venv first when it is missing or out of date.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/constraints.txt

.PHONY: setup lab test lint bench student nbgrader html lock clean

setup: $(STAMP)

# Reinstall only when the dependency list or the lock file changed.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

# JupyterLab refuses to start as root (e.g. in a container) unless told that it is fine.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The README's test command: the corrlib tests and doctests and every notebook under nbval
# (strict; the sanitize file and the kernel come from pyproject.toml's pytest section).
test: setup lint
	$(BIN)/pytest --nbval

# Library benchmarks, then the course's time budget (each notebook in a fresh kernel);
# both always run, and the target fails if either misses a target.
bench: setup
	$(BIN)/python benchmarks/run_all.py; status=$$?; \
	$(BIN)/python benchmarks/bench_notebooks.py || status=1; exit $$status

# Exercises without solutions, for handing out: build/student/
student: setup
	$(BIN)/python -m tools.make_student notebooks build/student

# The course as an nbgrader course (source/, release/, nbgrader_config.py): build/nbgrader/
nbgrader: setup
	$(BIN)/python -m tools.make_nbgrader notebooks build/nbgrader

# The course website: `jupyter-book build` of the committed book/ (its _config.yml and _toc.yml),
# rendered from the stored outputs, nothing executed, offline-ready: build/html/index.html
# (the staged sources and Sphinx's log in build/book/)
html: setup
	$(BIN)/python -m tools.make_html book build/html

# Re-pin the lock file to what .venv holds now (after a deliberate upgrade).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^corrlib' > $(LOCK)

clean:
	rm -rf build .pytest_cache .ruff_cache
