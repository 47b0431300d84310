# Everything a fresh machine needs: `make demo`, `make test`, `make bench`.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-unit lint bench sandbox serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/myositis-cds demo

test: install
	$(VENV)/bin/pytest --cov --cov-report=term

test-unit: install
	$(VENV)/bin/pytest -m "not integration and not browser"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(VENV)/bin/python -m bench

sandbox: install
	$(VENV)/bin/myositis-cds sandbox

serve: install
	$(VENV)/bin/myositis-cds serve

clean:
	rm -rf $(VENV) .venv-fhir .pytest_cache
