# The two commands of the README's promise, each doing its own set-up:
#   make demo   -> install into .venv (first time only), render demo.mp4
#   make test   -> install into .venv (first time only), run the test suite
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: install demo test

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip==26.3"
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autalk demo -o demo.mp4

test: $(STAMP)
	$(VENV)/bin/python -m pytest
