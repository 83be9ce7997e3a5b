# The two commands of the README's promise, each doing its own set-up:
#   make demo   -> install into .venv (first time only), render demo.mp4
#   make test   -> install into .venv (first time only), lint, check formatting, run the tests
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: install demo lint test

install: $(STAMP)

$(STAMP): setup.py constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip==26.3"
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autalk demo -o demo.mp4

# ruff's rules and format: pyproject.toml. `ruff format .` fixes what the second line reports.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/python -m pytest
