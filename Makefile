# DL-ENS: `make demo` and `make test` bootstrap everything (uv via pip if missing, then a frozen sync).
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export RAY_ENABLE_UV_RUN_RUNTIME_ENV := 0
RUN := $(UV) run --frozen
STORE ?= data/demo.zarr
START ?= 2025-07-01
DAYS ?= 15
DOMAIN ?= demo
TRAIN_CONFIG ?= configs/train/demo.yaml
TEST_START ?= 2025-07-13
TEST_DAYS ?= 3
REPORT ?= data/demo-report
SERVE_PORT ?= 8000
# make demo serves until Ctrl-C; under CI it stops once its example request has answered.
SERVE_STOP_AFTER ?= $(if $(CI),0,)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser demo test test-fast lint bench clean deploy deploy-status images push up down docs mlflow-ui

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock libs/common/pyproject.toml libs/model/pyproject.toml libs/testing/pyproject.toml services/ingest/pyproject.toml services/evaluate/pyproject.toml services/train/pyproject.toml services/serve/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen --all-packages
	@command -v uv >/dev/null 2>&1 || echo "note: uv is installed but not on your PATH; for the README's 'uv run …' lines:" \
		"export PATH=\"$$(python3 -m site --user-base)/bin:\$$PATH\" (or type 'python3 -m uv run …')"
	@touch $@

browser:  ## Debian's Chromium, which the report's browser test drives (skipped where apt is unavailable)
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: could not install chromium; the browser test will be skipped (and fail under CI)"

demo: setup  ## synthetic ingest on the demo domain, checks, a map; train, predict the test period, evaluate, serve
	@echo "== demo 1/6 ingest: $(DAYS) synthetic days from $(START) on the $(DOMAIN) domain into $(STORE)"
	$(RUN) dlens-ingest synthetic --store $(STORE) --start $(START) --days $(DAYS) --domain $(DOMAIN) --seed 0
	@echo "== demo 2/6 check: the store's status, a deep validation, a quick-look map"
	$(RUN) dlens-ingest status --store $(STORE)
	$(RUN) dlens-ingest validate --store $(STORE) --deep
	$(RUN) dlens-ingest plot --store $(STORE) --species no2 --lead 18 --out data/demo_no2.png
	@echo "== demo 3/6 train: $(TRAIN_CONFIG) with Ray Train, published to the store's registry"
	@set -o pipefail; \
	model=$$($(RUN) dlens-train fit --store $(STORE) --config $(TRAIN_CONFIG) | tee >(cat >&2) | sed -n 's/^model: //p') && \
	$(RUN) dlens-train models --store $(STORE) && \
	echo "== demo 4/6 predict: $(TEST_DAYS) test days from $(TEST_START), from every member and from the first six" && \
	$(RUN) dlens-train predict --store $(STORE) --model $$model --start $(TEST_START) --days $(TEST_DAYS) && \
	$(RUN) dlens-train predict --store $(STORE) --model $$model --start $(TEST_START) --days $(TEST_DAYS) --members early && \
	echo "== demo 5/6 evaluate: DL-ENS against the Median and Weighted ENSEMBLEs, MOS, EMOS, persistence, climatology and the members" && \
	$(RUN) dlens-evaluate --store $(STORE) --start $(TEST_START) --days $(TEST_DAYS) \
		--products dlens-$$model,dlens-$$model-early,median,median-early,mean,weighted,best-member,mos,emos,persistence,climatology,members --out $(REPORT) && \
	echo "demo report: file://$(abspath $(REPORT))/index.html (numbers in $(REPORT)/metrics.json)" && \
	echo "== demo 6/6 serve: model $$model over HTTP$(if $(SERVE_STOP_AFTER), (stops once its example answered), (Ctrl-C stops))" && \
	$(RUN) dlens-serve run --store $(STORE) --model $$model --port $(SERVE_PORT) \
		$(if $(SERVE_STOP_AFTER),--stop-after $(SERVE_STOP_AFTER))

RAY_ADDRESS ?= http://127.0.0.1:8265
DEPLOY := $(RUN) python infra/deploy.py --address $(RAY_ADDRESS)

deploy: setup  ## ingest, train and evaluate as jobs on the cluster at RAY_ADDRESS (its dashboard), then serve
	$(DEPLOY) --store $(STORE) --start $(START) --days $(DAYS) --domain $(DOMAIN) --train-config $(TRAIN_CONFIG) \
		--test-start $(TEST_START) --test-days $(TEST_DAYS) --http-port $(SERVE_PORT)

deploy-status: setup  ## the pipeline's jobs and the Serve application on the cluster at RAY_ADDRESS
	$(DEPLOY) status

# Images (infra/docker): one per service plus dlens-cluster (every service, for a shared cluster).
IMAGES := ingest evaluate train serve cluster
REGISTRY ?=
IMAGE_TAG ?= latest
RAY_VERSION := $(shell sed -n '/^name = "ray"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)
DOCKER_ENGINE = docker info >/dev/null 2>&1 || { echo "$@: no Docker engine answers here (docker info failed):" \
	"run it where Docker runs; the files are in infra/" >&2; exit 2; }
COMPOSE ?= docker compose
COMPOSE_FILES := -f infra/compose.yaml $(if $(GPU),-f infra/compose.gpu.yaml)
# The compose stack's Ray token: the one Ray keeps in ~/.ray/auth_token (make deploy sends it too).
# Serve's bearer token is the caller's DLENS_API_TOKEN; without one the replicas would refuse to start, so
# make up refuses first unless DLENS_ALLOW_ANONYMOUS=true asks for anonymous access (docs/security.md).
API_TOKEN_CHECK = [ -n "$$DLENS_API_TOKEN" ] || [ "$$DLENS_ALLOW_ANONYMOUS" = true ] || { echo "up: set" \
	"DLENS_API_TOKEN (export DLENS_API_TOKEN=\$$(openssl rand -hex 32)), the Serve endpoint's bearer token, or" \
	"DLENS_ALLOW_ANONYMOUS=true to serve without one" >&2; exit 2; }
WITH_TOKEN = RAY_AUTH_TOKEN=$$($(RUN) ray get-auth-token --generate 2>/dev/null) DLENS_REGISTRY=$(REGISTRY) DLENS_TAG=$(IMAGE_TAG)

images: setup  ## build and tag the images of infra/docker (REGISTRY=host/path/ to prefix, IMAGE_TAG)
	@$(DOCKER_ENGINE)
	@for image in $(IMAGES); do \
		echo "== $(REGISTRY)dlens-$$image:$(IMAGE_TAG) (Ray $(RAY_VERSION))"; \
		docker build -f infra/docker/$$image.Dockerfile --build-arg RAY_VERSION=$(RAY_VERSION) \
			-t $(REGISTRY)dlens-$$image:$(IMAGE_TAG) . || exit 1; \
	done

push: images  ## push the images to REGISTRY
	@for image in $(IMAGES); do docker push $(REGISTRY)dlens-$$image:$(IMAGE_TAG) || exit 1; done

up: setup  ## one-machine stack (infra/compose.yaml; MINIO_ROOT_PASSWORD and DLENS_API_TOKEN required): MinIO + bucket, Ray head + worker, Serve's port; GPU=1 for GPUs
	@$(API_TOKEN_CHECK)
	@$(DOCKER_ENGINE)
	$(WITH_TOKEN) $(COMPOSE) $(COMPOSE_FILES) up -d --build
	$(DEPLOY) wait
	@echo "stack up: dashboard http://127.0.0.1:8265, MinIO console http://127.0.0.1:9001; next:"
	@echo "  make deploy RAY_ADDRESS=http://127.0.0.1:8265 STORE=s3://dlens/store.zarr"

down: setup  ## stop the compose stack (VOLUMES=1 also drops the MinIO volume)
	@$(DOCKER_ENGINE)
	$(WITH_TOKEN) MINIO_ROOT_PASSWORD="$${MINIO_ROOT_PASSWORD:-unused-by-down}" \
		$(COMPOSE) $(COMPOSE_FILES) --profile serve down $(if $(VOLUMES),--volumes)

docs: setup  ## regenerate docs/configuration.md from the pydantic models (a test checks it is current)
	$(RUN) python tools/config_reference.py

# The MLflow UI over the local file store every fit and sweep logs to (a team's server needs none of this:
# MLFLOW_TRACKING_URI=http://mlflow:5000 points the runs at it; docs/train.md).
MLRUNS ?= data/mlruns
MLFLOW_PORT ?= 5000

mlflow-ui: setup  ## the MLflow UI on the runs of every fit and sweep (MLRUNS=data/mlruns) at http://127.0.0.1:MLFLOW_PORT
	@mkdir -p $(MLRUNS)
	@echo "MLflow UI: http://127.0.0.1:$(MLFLOW_PORT) (runs of $(abspath $(MLRUNS)); Ctrl-C stops)"
	MLFLOW_ALLOW_FILE_STORE=true $(RUN) mlflow ui --backend-store-uri file:$(abspath $(MLRUNS)) \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

test: lint browser  ## lint, then the whole suite (slow tests included)
	$(RUN) pytest

test-fast: setup
	$(RUN) pytest -m "not slow"

bench: setup  ## every benchmark of docs/benchmarks.md, then a summary; fails if any missed its target (BENCH=skill,serve for some)
	$(RUN) python bench/run_all.py $(if $(BENCH),--only $(BENCH))

clean:
	rm -rf data/demo.zarr data/demo-report bench/results test-artifacts .pytest_cache .ruff_cache
