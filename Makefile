# dispatch311 — build, run and test. `make` alone lists the targets.
#
# On a fresh Debian machine `make run` and `make test` install and start what
# they need (Redis, PostgreSQL) through deploy/ensure-deps.sh; only the Rust
# toolchain is expected to be there.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# one shared build directory, outside the checkout
CARGO_TARGET_DIR ?= $(HOME)/.cache/dispatch311-target
export CARGO_TARGET_DIR
# real NYC open data for tests and benchmarks, kept outside the repository
DISPATCH311_DATA_DIR ?= $(CURDIR)/../shared/data
export DISPATCH311_DATA_DIR
# the server tests create their throwaway databases on: the one deploy/ensure-postgres.sh provides
DISPATCH311_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export DISPATCH311_TEST_DATABASE_URL
# rustup installs cargo here; a non-login shell may not have it on PATH
export PATH := $(PATH):$(HOME)/.cargo/bin
# apt-get never asks questions (CI has no stdin)
export DEBIAN_FRONTEND := noninteractive

CARGO ?= cargo

.PHONY: help deps run stop status logs tour observe test build lint fmt bench chaos fuzz clean-db

help: ## list the targets
	@echo "dispatch311 — make <target>:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install and start what the suite needs (Redis, PostgreSQL), check the Rust toolchain
	@deploy/ensure-deps.sh

run: deps ## build and start the four services, the console (:8311) and the Open311 gateway (:8312) in the background (restarts a running suite)
	@deploy/run-suite.sh

stop: ## stop the services started by `make run` (and the Prometheus of `make observe`)
	@deploy/stop-suite.sh

status: ## show which services run (and Prometheus)
	@deploy/status.sh || true

logs: ## follow the services' logs (Ctrl-C to quit)
	@compgen -G '.local/logs/*.log' >/dev/null || { echo "no logs yet: start the suite with 'make run'"; exit 1; }
	@tail -n 20 -F .local/logs/*.log

tour: ## the two-minute tour: file a request and follow it through the running suite
	@deploy/status.sh --quiet || { echo "the suite is not running: start it with 'make run'"; exit 1; }
	@source deploy/common.sh && suite_env && $(CARGO) run -q --bin dispatch311-cli -- tour

observe: ## start Prometheus scraping the running suite, with the alert rules: http://127.0.0.1:9090
	@deploy/observe.sh

test: deps ## run every test (against local Redis and PostgreSQL, and an S3-compatible server it installs), the Prometheus rules' and the Kubernetes manifests' too
	@deploy/check-prometheus-rules.sh
	@deploy/check-k8s.sh
	@deploy/ensure-s3-test-server.sh
	@# the console's browser test drives Debian's Chromium with Playwright
	@deploy/ensure-browser.sh >/dev/null
	@# the Open311 gateway's answers are checked with xmllint, jsonschema, and others' clients
	@deploy/ensure-open311-tools.sh >/dev/null
	@# the end-to-end tests start the real service binaries: build them first
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets
	@# the short chaos run: every kind of fault, then the total-queue check
	@deploy/ensure-chaos-tools.sh
	$(CARGO_TARGET_DIR)/debug/dispatch311-chaos --short

.PHONY: k8s
k8s: ## render the Kubernetes overlays (deploy/k8s), validate them offline and check they agree with the code
	@deploy/check-k8s.sh

build: ## build every crate and binary
	$(CARGO) build --workspace --bins

lint: ## check formatting, clippy warnings, import cycles between files and the protos (buf lint)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 deploy/import-cycles.py services/*/src libs/*/src tools/*/src tests/src
	@deploy/ensure-node.sh
	npx -y @bufbuild/buf lint

fmt: ## format all Rust code
	$(CARGO) fmt --all

chaos: deps ## the chaos run against a release build: faults while real requests flow, then lost/duplicated counts (ARGS="--seconds S --pause P --rate R --seed N")
	@deploy/ensure-chaos-tools.sh
	$(CARGO) build --release --workspace --bins
	$(CARGO_TARGET_DIR)/release/dispatch311-chaos $(ARGS)

fuzz: ## run every fuzz target (fuzz/, cargo fuzz on a nightly toolchain) for SECONDS each from its seed corpus (ARGS="SECONDS [TARGET...]", default 600)
	@deploy/fuzz.sh $(ARGS)

bench: deps ## benchmark a release build of the suite on a fresh database (prints figures; ARGS="--requests N --concurrency C")
	deploy/bench.sh $(ARGS)

clean-db: ## drop test databases (d311_test_*) left behind by crashed tests
	@deploy/ensure-postgres.sh
	@deploy/clean-test-dbs.sh

.PHONY: images compose-up compose-down compose-smoke
images: ## build the images of the four services, the console and the Open311 gateway (and the base, PostgreSQL, Redis, Prometheus images); DISPATCH311_IMAGES_NO_BUILD=1 takes the release binaries as they are
	@deploy/build-images.sh

compose-up: ## start the compose stack (deploy/compose): PostgreSQL, Redis, the services, the console, the gateway, Prometheus, on loopback ports (51051-51054, 58311, 58312)
	@deploy/compose/up.sh

compose-down: ## stop the compose stack (data volumes kept; DISPATCH311_COMPOSE_WIPE=1 removes them)
	@deploy/compose/down.sh

compose-smoke: ## the tour against the compose stack, the console's and the gateway's health, and Prometheus scraping them
	@deploy/compose/smoke.sh
