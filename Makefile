# Two commands on a fresh machine: `make run` and `make test`. Everything else is built on first use.
SHELL := /bin/bash
# Python 3.12 (the Lambda runtime): on PATH, or from pyenv, which these machines have.
PYTHON312 := $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do $$p -c 'import sys' >/dev/null 2>&1 && { command -v $$p; break; }; done)
export PATH := $(dir $(PYTHON312)):$(PATH)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test run local bench lint clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt layers/accrual/requirements.txt pyproject.toml
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (pyenv or PATH)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

test: venv
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .aws-sam .tools
