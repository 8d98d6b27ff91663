# Driftline: `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-unit test-integration test-e2e lint typecheck infra-up infra-down infra-status schemas docs bench chaos soak clean console-assets

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install Driftline with its dev tools

infra-up: install ## start Kafka, PostgreSQL and MinIO locally (fetched/built on first use)
	$(BIN)/driftline infra up

infra-down: install
	$(BIN)/driftline infra down

infra-status: install
	$(BIN)/driftline infra status

demo: install ## bring everything up and run a sample mission end to end
	$(BIN)/driftline demo $(DEMO_ARGS)

test: install ## the whole suite: lint, types, unit, integration, e2e (real services)
	$(BIN)/ruff check src workers tests bench
	$(BIN)/mypy src workers tests bench
	$(BIN)/pytest -q -p no:cacheprovider

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install
	$(BIN)/pytest -q tests/integration

test-e2e: install
	$(BIN)/pytest -q tests/e2e

lint: install
	$(BIN)/ruff check src workers tests bench
	$(BIN)/ruff format --check src workers tests bench

typecheck: install
	$(BIN)/mypy src workers tests bench

schemas: install ## regenerate the published JSON Schemas and AsyncAPI document
	$(BIN)/driftline schemas write

docs: schemas ## regenerate the generated parts of docs/api.md and docs/events.md
	$(BIN)/driftline docs write

bench: install ## every speed harness: pipeline vs OpenDrift, runner/relay vs aiokafka, ingest vs PostgreSQL, memory, a huge mission on 1 vs 2 simulate workers
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.stage_throughput --only runner,relay --events 3000 --repeat 3
	$(BIN)/python -m bench.ingest --seconds 8 --workers 1,2 --repeat 3
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.shards --repeat 1

NODES ?= 1
chaos: install ## 200 missions under seeded faults, on services of its own (NODES=3: three Kafka nodes)
	$(BIN)/python -m bench.chaos --nodes $(NODES) $(CHAOS_ARGS)

soak: install ## 100,000 missions, retention in minutes: fails if a store keeps growing or p99 drifts
	$(BIN)/python -m bench.soak --private-services $(SOAK_ARGS)

LEAFLET_VERSION ?= 1.9.4
CONSOLE_VENDOR := src/driftline/console/static/vendor/leaflet
console-assets: ## refresh the console's vendored Leaflet from the npm registry (LEAFLET_VERSION=x.y.z)
	@command -v npm >/dev/null || { echo "npm is required to refresh the console's assets"; exit 1; }
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent leaflet@$(LEAFLET_VERSION) >/dev/null && tar xzf leaflet-*.tgz) && \
	rm -rf $(CONSOLE_VENDOR) && mkdir -p $(CONSOLE_VENDOR)/images && \
	cp "$$tmp"/package/dist/leaflet.js "$$tmp"/package/dist/leaflet.css "$$tmp"/package/LICENSE $(CONSOLE_VENDOR)/ && \
	cp "$$tmp"/package/dist/images/*.png $(CONSOLE_VENDOR)/images/ && \
	sed -i '/sourceMappingURL/d' $(CONSOLE_VENDOR)/leaflet.js && \
	node -p "require('$$tmp/package/package.json').version" > $(CONSOLE_VENDOR)/VERSION
	@echo "Leaflet $$(cat $(CONSOLE_VENDOR)/VERSION) vendored into $(CONSOLE_VENDOR)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
