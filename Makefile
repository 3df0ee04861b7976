# Everything a new machine needs: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck pytest docs bench format clean chromium

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip >/dev/null
	touch $@

# The runtime install: enough for the demo (core, embedded SQLite ledger) and for looking at
# its run with `codon ui` (the ui extra: uvicorn and Starlette).
$(VENV)/.installed: $(VENV)/.base pyproject.toml
	$(PIP) install -e ".[ui]"
	touch $@

# The development install: every extra the test suite exercises, and the browser the run
# explorer's tests drive (Debian's chromium; Playwright never downloads a browser of its own).
$(VENV)/.installed-dev: $(VENV)/.base pyproject.toml
	$(PIP) install -e ".[dev]"
	touch $@ $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium

chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| { echo "cannot install chromium: run 'apt-get install chromium' as root" >&2; \
		     [ "$$CI" != "true" ]; }; \
	fi

demo: $(VENV)/.installed
	$(PY) examples/research_team.py

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check src tests bench examples docs/hooks
	$(PY) -m ruff format --check src tests bench examples docs/hooks

typecheck: $(VENV)/.installed-dev
	$(PY) -m mypy

pytest: $(VENV)/.installed-dev chromium
	$(PY) -m pytest -q

# The documentation site, built strictly (a broken link or reference fails); `mkdocs serve`
# serves it while you edit docs/. Its code blocks run in pytest (tests/docs/).
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir site

test: lint typecheck docs pytest

bench: $(VENV)/.installed-dev
	$(PY) -m bench

format: $(VENV)/.installed-dev
	$(PY) -m ruff format src tests bench examples docs/hooks
	$(PY) -m ruff check --fix src tests bench examples docs/hooks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist site
