# Two commands on a fresh machine: `make run` and `make test`. Everything else is built on first use.
SHELL := /bin/bash
# Python 3.12 (the Lambda runtime): on PATH, or from pyenv, which these machines have.
PYTHON312 := $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do $$p -c 'import sys' >/dev/null 2>&1 && { command -v $$p; break; }; done)
export PATH := $(dir $(PYTHON312)):$(PATH)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SAM CLI (with its cfn-lint) pins an older boto3 than the runtime: it gets its own virtual environment.
TOOLS := .tools/venv
TOOLS_STAMP := $(TOOLS)/.installed
# checkov (the template's security checks) clashes with both: a third virtual environment.
CHECKOV := .tools/checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
export SAM_CLI_TELEMETRY := 0

.PHONY: venv tools checkov test test-fuzz run local bench lint check format build clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt layers/accrual/requirements.txt pyproject.toml
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (pyenv or PATH)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (pyenv or PATH)"; exit 1; }
	$(PYTHON312) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q -r requirements-tools.txt
	touch $(TOOLS_STAMP)

checkov: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (pyenv or PATH)"; exit 1; }
	$(PYTHON312) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install -q --upgrade pip
	$(CHECKOV)/bin/pip install -q -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

# Every test, including the template checks (cfn-lint, sam validate --lint, sam build, checkov) in tests/integration,
# after the code checks (ruff and mypy: a lint failure stops before the slow suite).
test: venv tools checkov check
	$(BIN)/pytest -n 2

# The reader fuzzer's long profile: 2,600 hostile pages per reader (10,400 in all); `make test` runs its quick profile.
test-fuzz: venv
	ACCRUAL_FUZZ=long $(BIN)/pytest tests/property/test_reader_fuzz.py -q -p no:randomly

# The code checks: ruff's lint rules, ruff's formatting (checked, not applied) and mypy, as configured in
# pyproject.toml.
check: venv
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

# Apply ruff's safe fixes and its formatting (then review the diff).
format: venv
	$(BIN)/ruff check --fix
	$(BIN)/ruff format

# checkov's skips are in template.yaml, each with its reason (Metadata: checkov: skip); none on the command line.
lint: venv tools checkov check
	$(BIN)/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region us-east-1
	$(CHECKOV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

build: tools
	$(TOOLS)/bin/sam build

# The main job end to end on the embedded local stack (moto and the partner simulator), then a summary of what
# happened; exits non-zero when the audit or a count check fails.
run: venv
	$(BIN)/python -m accrual_dev.local.demo

# The embedded local stack: a moto server provisioned from template.yaml, until Ctrl-C.
local: venv
	$(BIN)/accrual stack up

# Benchmarks: rules throughput and memory, ledger counts per order on the embedded moto, cost extrapolation.
bench: venv
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .aws-sam .tools
