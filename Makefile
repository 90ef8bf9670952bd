# Glue lake: local development entry points. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
LAKE      := $(VENV)/bin/lake
STAMP     := $(VENV)/.installed
LAKE_ROOT ?= .lake
ROWS      ?= 2000000
BIG_ROWS  ?= 10000000
PUBLISH_ROWS ?= 200000
PARITY_ROWS ?= 1000000
PUBLISH_DAYS ?= 30
BENCH_DIR ?= .bench
DIST      ?= dist
ENV       ?= dev
JOB       ?= orders/v2
PROTOCOL_JAR := .cache/jars/lake-spark.jar
JARS_STAMP := .cache/jars/.fetched
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
AXE_STAMP := node_modules/.installed
COMPOSE   := docker compose -f docker/compose.yaml

.PHONY: help run test jars bench bench-publish bench-catalog bench-latency parity lint lock lock-checkov clean prereqs infra package deploy docker-build docker-test docker-run

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: prereqs $(STAMP) $(PROTOCOL_JAR) ## Upload the bundled samples of both datasets, run the pipeline (jobs, then crawlers), the named Athena queries, then one new file through the fast lane
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
	@echo "== lake upload --process: one small new file through the fast lane (the DuckDB engine, no JVM), queryable when it ends"
	@mkdir -p $(LAKE_ROOT)/_local && now=$$(date -u +%Y%m%dT%H%M%S) && printf '%s\n%s\n' \
	  'order_id,customer_id,customer_email,product_sku,quantity,unit_price,currency,order_ts,country,discount_pct' \
	  "FL-$$now,C-9,fast@example.com,SKU-900,2,9.99,EUR,2026-11-05T08:00:00Z,FR,10" \
	  > $(LAKE_ROOT)/_local/fast-lane-$$now.csv && \
	  $(LAKE) --lake-root $(LAKE_ROOT) upload --dataset orders --process $(LAKE_ROOT)/_local/fast-lane-$$now.csv && \
	  $(LAKE) --lake-root $(LAKE_ROOT) query "SELECT order_id, total_amount, _ingested_at FROM clean.orders WHERE order_id = 'FL-$$now'"
	@echo "== data-quality pages of the runs (open one in a browser):"
	@ls -1 $(LAKE_ROOT)/_reports/*/*.html
	@echo "== the console (uploads by drag and drop, live status): $(LAKE) --lake-root $(LAKE_ROOT) serve"

test: prereqs $(STAMP) $(CHECKOV_STAMP) $(AXE_STAMP) $(PROTOCOL_JAR) $(JARS_STAMP) ## Run all tests (unit, job-level, CLI, packaging, console in Chromium with axe-core, cfn-lint and checkov on infra/)
	LAKE_CHECKOV=$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest

jars: $(PROTOCOL_JAR) $(JARS_STAMP) ## Build the lake's commit protocol (jvm/, javac) and fetch the S3A connector a local run on s3:// needs (pinned, SHA-256 checked, once)

$(PROTOCOL_JAR): $(wildcard jvm/lake/spark/*.java) | $(STAMP)
	$(LAKE) jars

$(JARS_STAMP): lib/jobs/s3a.py | $(STAMP)
	$(LAKE) jars --s3a
	touch $@

bench: prereqs $(STAMP) $(PROTOCOL_JAR) ## Benchmark the orders job against bare CSV->Parquet conversions, at local[1]/[2], memory at ROWS and BIG_ROWS
	$(PY) bench/orders_bench.py --rows $(ROWS) --big-rows $(BIG_ROWS) --work-dir $(BENCH_DIR)

parity: prereqs $(STAMP) $(PROTOCOL_JAR) ## Both engines through whole runs on the samples, seeded fuzz corpora and PARITY_ROWS of bench data: every row and count equal
	$(PY) bench/parity.py --rows $(PARITY_ROWS) --work-dir $(BENCH_DIR)

bench-publish: prereqs $(STAMP) $(JARS_STAMP) ## Requests and bytes of publishing one upload on S3 (moto): the lake's write-once publish against Iceberg 1.7.1
	$(PY) bench/publish_bench.py --rows $(PUBLISH_ROWS) --days $(PUBLISH_DAYS) --work-dir $(BENCH_DIR)

bench-catalog: prereqs $(STAMP) $(PROTOCOL_JAR) ## Benchmark lake query and lake crawl on the sample lake (median of 5, process start included)
	$(PY) bench/catalog_bench.py --work-dir $(BENCH_DIR)

bench-latency: prereqs $(STAMP) ## Fast lane: from lake upload --process to lake query returning the rows, 1k/10k/100k rows (median of 5)
	$(PY) bench/latency_bench.py --work-dir $(BENCH_DIR)

infra: $(STAMP) ## Regenerate infra/pipelines.yaml from glue_jobs/, crawlers/ and infra/athena/
	$(LAKE) infra generate

package: $(STAMP) ## Build the lib artifact and the versioned job scripts and contracts into dist/
	$(LAKE) package --dist $(DIST)

deploy: $(STAMP) ## Package, upload and deploy the stacks: make deploy ENV=dev [DRY_RUN=1] (AWS CLI v2 + credentials)
	$(LAKE) deploy --env $(ENV) --dist $(DIST) $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run)

docker-build: ## Build the dev image (public Glue 5 image + test dependencies); needs Docker
	$(COMPOSE) build glue

docker-test: docker-build $(PROTOCOL_JAR) ## Run the tests inside the Glue 5 image; needs Docker
	$(COMPOSE) run --rm glue "python3 -m pytest -p no:cacheprovider"

docker-run: docker-build package ## spark-submit the packaged job in the Glue 5 image: make docker-run JOB=orders/v2
	$(COMPOSE) run --rm glue "docker/run-job.sh $(JOB)"

lint: $(STAMP) ## Lint with ruff, and check the layers of lib/ with import-linter
	$(VENV)/bin/ruff check lib glue_jobs tests bench
	$(VENV)/bin/lint-imports

lock: ## Re-resolve pyproject.toml's pins into requirements.lock (needs the package index)
	rm -rf .lock-venv && $$(scripts/check-prereqs.sh) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q -e '.[tools,dev]'
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

lock-checkov: ## Re-resolve checkov's pins into requirements-checkov.lock (needs the package index)
	rm -rf .lock-venv && $$(scripts/check-prereqs.sh) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q "checkov==$$(sed -n 's/^checkov==//p' requirements-checkov.lock)"
	{ sed -n '1,2p' requirements-checkov.lock; .lock-venv/bin/pip freeze --all | grep -v '^pip=='; } > requirements-checkov.lock.new
	mv requirements-checkov.lock.new requirements-checkov.lock && rm -rf .lock-venv

clean: ## Remove the local lake, benchmark data, artifacts and the virtualenvs
	rm -rf $(LAKE_ROOT) .lake-docker $(BENCH_DIR) $(DIST) .cache $(VENV) $(CHECKOV_VENV) node_modules

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

# axe-core (the accessibility checker the console's browser tests load into each page) comes
# from npm at the lock's pin. Without npm those checks are skipped, and say so.
$(AXE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the console's accessibility checks (axe-core) will be skipped"; fi

# checkov gets its own virtualenv: its dependency pins clash with the lake's.
$(CHECKOV_STAMP): requirements-checkov.lock scripts/check-prereqs.sh
	@py=$$(scripts/check-prereqs.sh) && \
	  if [ ! -x $(CHECKOV_VENV)/bin/python ]; then echo "creating $(CHECKOV_VENV) with $$py"; $$py -m venv $(CHECKOV_VENV); fi
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.lock
	@touch $@
