# The two set-up commands are `make demo` and `make test`; both create or update .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-e2e test-bench test-browser test-spark lint bench lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/csw demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not bench and not e2e and not browser and not spark"

# Scenarios end to end (vendor shapes through the adapters to the marts, the consumer scenario's
# backtest and churn model, the CLI's exit codes over four real runs, the serving copy read by
# duckdb 1.1.3 in its own virtualenv; several minutes): CI runs them after `make test`.
test-e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e

# The benchmark smoke test (tier S end to end, about 2.5 min): CI runs it after `make test`.
test-bench: $(STAMP)
	$(BIN)/python -m pytest -m bench

# The HTML report in a real headless Chromium: installs Debian's chromium and chromedriver first
# (.ci/install-chromium; needs root or sudo and Debian's package index), then runs the browser tests.
test-browser: $(STAMP)
	.ci/install-chromium
	$(BIN)/python -m pytest -m browser

# The dbt models on Spark in local mode, compared row by row with DuckDB's (docs/engines.md; about
# 2 min): installs the `spark` extra (pyspark, dbt-spark; about 460 MB) into .venv first, and
# needs Java 17 (`java -version`; Debian: apt install openjdk-17-jdk).
SPARK_STAMP := $(VENV)/.installed-spark

$(SPARK_STAMP): $(STAMP)
	@command -v java >/dev/null || { echo "test-spark: Java is missing; Spark needs a JDK 17 on PATH (Debian: apt install openjdk-17-jdk)" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	touch $(SPARK_STAMP)

test-spark: $(SPARK_STAMP)
	$(BIN)/python -m pytest -m spark

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/csw bench --tier S --tier M --tier L

# Re-resolve the pins from pyproject.toml's ranges into constraints.txt (needs the network).
lock:
	rm -rf /tmp/csw-lock && $(PYTHON) -m venv /tmp/csw-lock
	/tmp/csw-lock/bin/pip install --quiet -e ".[dev,spark]"
	{ head -2 constraints.txt; /tmp/csw-lock/bin/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .csw dbt_project/target dbt_project/logs
