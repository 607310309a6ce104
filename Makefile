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
# ministack, the second emulator, pins its own botocore: a fourth virtual environment (started by the tests' fixtures).
MINISTACK := .tools/ministack
MINISTACK_STAMP := $(MINISTACK)/.installed
# DynamoDB Local, AWS's own DynamoDB emulator (the third emulator): a Java program, shipped whole inside a pinned npm
# tarball whose sha256 is checked; its licence is not open source, so it is fetched here and never committed.
DYNAMODB_LOCAL := .tools/dynamodb-local
DYNAMODB_LOCAL_STAMP := $(DYNAMODB_LOCAL)/.installed
DYNAMODB_LOCAL_PACKAGE := amplify-dynamodb-simulator@2.9.30
DYNAMODB_LOCAL_SHA256 := 3503ffac19f183407909fecdacf4db51ab1fdad1da7b2f177016670b2d80e4b9
export SAM_CLI_TELEMETRY := 0

.PHONY: chromium golden venv tools checkov ministack dynamodb-local test-dynamodb-local bench-day test-conformance test-ministack test-conformance-quick test test-fuzz run local bench lint check format build clean sam-local test-sam-local invoke

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

ministack: $(MINISTACK_STAMP)

$(MINISTACK_STAMP): requirements-ministack.txt
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (pyenv or PATH)"; exit 1; }
	$(PYTHON312) -m venv $(MINISTACK)
	$(MINISTACK)/bin/pip install -q --upgrade pip
	$(MINISTACK)/bin/pip install -q -r requirements-ministack.txt
	touch $(MINISTACK_STAMP)

# DynamoDB Local 1.25.1 (DynamoDBLocal.jar and its native libraries) from the pinned npm tarball, and Java 17 from
# Debian (default-jre-headless) when no `java` is on PATH; non-interactive, as CI runs it (root, no stdin). Also
# libeatmydata from Debian when missing, optional: DynamoDB Local's temporary file on disk then skips its syncs.
dynamodb-local: $(DYNAMODB_LOCAL_STAMP)

$(DYNAMODB_LOCAL_STAMP):
	@command -v java >/dev/null || { echo "installing Java (default-jre-headless)"; \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null; }
	@command -v npm >/dev/null || { echo "installing npm"; \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends npm >/dev/null; }
	@ls /usr/lib/*/libeatmydata.so* >/dev/null 2>&1 || { echo "installing libeatmydata1 (optional)"; \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends libeatmydata1 >/dev/null || \
		echo "libeatmydata1 not installed: DynamoDB Local on disk syncs every write (slower, nothing else)"; }
	rm -rf $(DYNAMODB_LOCAL) $(DYNAMODB_LOCAL).download
	mkdir -p $(DYNAMODB_LOCAL).download
	cd $(DYNAMODB_LOCAL).download && npm pack --silent $(DYNAMODB_LOCAL_PACKAGE) >/dev/null
	echo "$(DYNAMODB_LOCAL_SHA256)  $$(ls $(DYNAMODB_LOCAL).download/*.tgz)" | sha256sum --check --quiet
	mkdir -p $(DYNAMODB_LOCAL)
	tar -xzf $(DYNAMODB_LOCAL).download/*.tgz -C $(DYNAMODB_LOCAL) --strip-components=2 \
		package/emulator/DynamoDBLocal.jar package/emulator/DynamoDBLocal_lib package/emulator/LICENSE.txt
	rm -rf $(DYNAMODB_LOCAL).download
	touch $(DYNAMODB_LOCAL_STAMP)

# Debian's Chromium for the HTML report's browser test (tests/e2e/test_books_html.py), non-interactively as CI runs
# it (root, no stdin); where it cannot be installed the test is skipped and says why.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { echo "installing Chromium"; \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium >/dev/null || \
		echo "Chromium could not be installed: the HTML report's browser test will be skipped"; }

# Every test, including the template checks (cfn-lint, sam validate --lint, sam build, checkov) in tests/integration,
# after the code checks (ruff and mypy: a lint failure stops before the slow suite). Two workers that steal work from
# each other: xdist's default hands each worker a long queue up front, and one worker sat idle for the last six
# minutes while the other worked through the slow tests.
test: venv tools checkov chromium check
	$(BIN)/pytest -n 2 --dist worksteal

# The reader fuzzer's long profile: 2,600 hostile pages per reader (10,400 in all); `make test` runs its quick profile.
test-fuzz: venv
	ACCRUAL_FUZZ=long $(BIN)/pytest tests/property/test_reader_fuzz.py -q -p no:randomly

# The golden decisions (tests/golden/month.jsonl): written again on purpose when a rule changes; review the diff.
golden: venv
	PYTHONPATH=tests $(BIN)/python tests/support/golden.py --write
	git diff --stat -- tests/golden

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

# `sam local invoke` on this machine: a Docker daemon (dockerd started, or docker.io installed, as root), the python3.12
# Lambda base image (the official one, or a stand-in built from Debian packages once per machine) and the functions
# built for this machine's architecture into .aws-sam/local/build (`make build` stays arm64). docs/sam-local.md.
sam-local: venv tools
	$(BIN)/python -m accrual_dev.samlocal setup

# Every function with an event in events/ through `sam local invoke` against a fresh local stack and the partner
# simulator, each checked in the stack; stops a dockerd it started.
test-sam-local: venv tools
	$(BIN)/python -m accrual_dev.samlocal test

# The main job end to end on the embedded local stack (moto and the partner simulator), then a summary of what
# happened; exits non-zero when the audit or a count check fails.
run: venv
	$(BIN)/python -m accrual_dev.local.demo

# The local stack until Ctrl-C: DynamoDB Local (the ledger's tables) beside a moto server (every other service),
# provisioned from template.yaml, and the partner simulator, with the partners' endpoints and secrets pointing at it
# (prints the exports for `accrual run` in another shell). ACCRUAL_EMULATOR=moto|ministack picks another emulator.
local: venv dynamodb-local
	ACCRUAL_EMULATOR=$${ACCRUAL_EMULATOR:-dynamodb-local} DYNAMODB_LOCAL_STORAGE=$${DYNAMODB_LOCAL_STORAGE:-disk} \
		$(BIN)/accrual stack up

# One function's real handler with an event and the function's environment from template.yaml, against the local
# stack (AWS_ENDPOINT_URL, else an embedded one): make invoke FN=ReconcileFunction EVENT=events/reconcile.json
invoke: venv
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>.json"; exit 2; }
	$(BIN)/python -m accrual_dev.invoke $(FN) $(EVENT)

# Benchmarks (docs/performance.md): calls and capacity units per order for each step on ministack beside a reference
# and the lower bound, CPU per line, ingest memory (on DynamoDB Local beside moto), handler import time, cost per
# million orders. Prints tables and writes bench/results.json. `make bench BENCH_ARGS=--full-memory` adds 100,000 and 1,000,000 lines (hours).
bench: venv ministack dynamodb-local
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/cli_workers.py

# A day of a cashback service through the CLI on the local stack `make local` runs (DynamoDB Local beside moto):
# clicks, the day's report, its settlement, confirmation and the month's report, each step's time and the peak memory
# of the CLI and of the emulators. make bench-day DAY_ARGS="--orders 10000 --workers 16" (default 100,000 orders,
# serial, DynamoDB Local's tables on disk as make local keeps them).
bench-day: venv dynamodb-local
	$(BIN)/python bench/day.py $(DAY_ARGS)

# The integration and end-to-end suites on the three emulators: moto, ministack, then DynamoDB Local (the fixtures
# choose by ACCRUAL_EMULATOR); a test an emulator gets wrong is marked only_on(...) with the reason (docs/emulators.md).
CONFORMANCE := tests/integration tests/e2e --ignore=tests/integration/test_template.py
test-conformance: venv ministack dynamodb-local
	ACCRUAL_EMULATOR=moto $(BIN)/pytest -n 2 --dist worksteal -q $(CONFORMANCE)
	ACCRUAL_EMULATOR=ministack $(BIN)/pytest -n 2 --dist worksteal -q $(CONFORMANCE)
	ACCRUAL_EMULATOR=dynamodb-local $(BIN)/pytest -n 2 --dist worksteal -q $(CONFORMANCE)

# The same suites on ministack only.
test-ministack: venv ministack
	ACCRUAL_EMULATOR=ministack $(BIN)/pytest -n 2 --dist worksteal -q $(CONFORMANCE)

# The same suites with DynamoDB on DynamoDB Local (the other services on moto).
test-dynamodb-local: venv dynamodb-local
	ACCRUAL_EMULATOR=dynamodb-local $(BIN)/pytest -n 2 --dist worksteal -q $(CONFORMANCE)

# CI's share (after `make test`, which runs everything on moto): the stack from the template, the ledger and the
# ingest paths on ministack, then on DynamoDB Local; the whole conformance run takes too long on 2 cores to run on
# every change.
CONFORMANCE_QUICK := tests/integration/test_stack.py tests/integration/test_ledger.py \
	tests/integration/test_hostile_ingest.py tests/integration/test_ingest_stream.py \
	tests/integration/test_ministack_server.py tests/integration/test_dynamodb_local_server.py \
	tests/e2e/test_local_stack_dynamodb_local.py -m "not slow"
test-conformance-quick: venv ministack dynamodb-local
	ACCRUAL_EMULATOR=ministack $(BIN)/pytest -n 2 --dist worksteal -q $(CONFORMANCE_QUICK)
	ACCRUAL_EMULATOR=dynamodb-local $(BIN)/pytest -n 2 --dist worksteal -q $(CONFORMANCE_QUICK)

clean:
	rm -rf $(VENV) .aws-sam .tools
