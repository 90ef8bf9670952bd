# Glue lake: local development entry points. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
LAKE      := $(VENV)/bin/lake
STAMP     := $(VENV)/.installed
LAKE_ROOT ?= .lake
ROWS      ?= 2000000
BENCH_DIR ?= .bench

.PHONY: help run test bench lint lock clean prereqs

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: prereqs $(STAMP) ## Upload the bundled samples of both datasets, run the pipeline (jobs, then crawlers), then the named Athena queries
	@echo "== lake upload: file checks, then the raw zone or rejected/ (exit 1 = some file rejected)"
	$(LAKE) --lake-root $(LAKE_ROOT) upload --dataset orders samples/orders/* || [ $$? -eq 1 ]
	$(LAKE) --lake-root $(LAKE_ROOT) upload --dataset customers samples/customers/* || [ $$? -eq 1 ]
	@echo "== lake pipeline: each dataset's current job on its pending uploads, then the crawlers"
	$(LAKE) --lake-root $(LAKE_ROOT) pipeline
	@echo "== lake status: every upload and what became of it"
	$(LAKE) --lake-root $(LAKE_ROOT) status
	@echo "== lake queries --run: the named Athena queries of infra/athena/ on the crawled tables"
	$(LAKE) --lake-root $(LAKE_ROOT) queries --run \
	  --param upload_id=$$($(LAKE) --lake-root $(LAKE_ROOT) status --dataset orders --status ARCHIVED --format ids | head -1)

test: prereqs $(STAMP) ## Run all tests (unit, job-level, contract, CLI)
	$(PY) -m pytest

bench: prereqs $(STAMP) ## Benchmark the orders job against a bare CSV->Parquet conversion (ROWS=2000000)
	$(PY) bench/orders_bench.py --rows $(ROWS) --work-dir $(BENCH_DIR)

lint: $(STAMP) ## Lint with ruff
	$(VENV)/bin/ruff check lib glue_jobs tests bench

lock: ## Re-resolve pyproject.toml's pins into requirements.lock (needs the package index)
	rm -rf .lock-venv && $$(scripts/check-prereqs.sh) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q -e '.[dev]'
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean: ## Remove the local lake, benchmark data and the virtualenv
	rm -rf $(LAKE_ROOT) $(BENCH_DIR) $(VENV)

prereqs:
	@scripts/check-prereqs.sh >/dev/null

# The virtualenv is (re)built whenever the pins change. Java is checked first so a
# missing JDK fails in one clear line instead of deep inside Spark.
$(STAMP): pyproject.toml requirements.lock scripts/check-prereqs.sh
	@py=$$(scripts/check-prereqs.sh) && \
	  if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$py"; $$py -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@
