# PROST: `make run` starts the platform, `make test` runs the whole suite.
SHELL := /bin/bash
GO ?= go
# Every module of the workspace (pkg, services/*, cmd/prost).
MODULES := $(shell $(GO) list -f '{{.Dir}}' -m)
PKGS := $(addsuffix /...,$(MODULES))
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: all build run test test-short test-chaos fuzz fuzz-short lint fmt tidy sqlc sqlc-check help bench bench-scale console chromium

all: build

help:
	@echo "make run      build bin/prost and start every service (prost dev, embedded NATS)"
	@echo "make test     run the whole test suite (needs Postgres at 127.0.0.1:5432)"
	@echo "make fuzz     fuzz every Fuzz target (the HTTP surface in cmd/prost, the parsers in pkg) for FUZZTIME each (default 60s)"
	@echo "make test-chaos  kill and restart real prost, nats-server and Postgres processes under load; check nothing is lost, duplicated or reordered"
	@echo "make build    build the console (npm) and bin/prost, which embeds it"
	@echo "make console  build only the console's assets (web/ -> pkg/console/dist/app)"
	@echo "make bench    measure PROST against raw Postgres and JetStream; writes docs/benchmarks.md (BENCH_DURATION per step, default 20s)"
	@echo "make bench-scale  the scale curves (since, rules, Apps, audit verify at two sizes); writes docs/benchmarks-scale.md"
	@echo "make lint     go vet, gofmt and a check that sqlc output is current"
	@echo "make sqlc     regenerate the typed SQL code from pkg/**/queries.sql"

# Stamped into `prost --version`.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build: console
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/prost ./cmd/prost

# The console (web/: React, TypeScript, Tailwind) is built with npm from the
# versions pinned in web/package-lock.json into pkg/console/dist/app, which
# the prost binary embeds (go:embed). The built files are not kept in git:
# build and test make them first, and again only when a source changed.
NPM ?= npm
CONSOLE_OUT := pkg/console/dist/app/index.html
CONSOLE_DEPS := web/node_modules/.package-lock.json
CONSOLE_SRC := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/package.json web/vite.config.ts web/tsconfig.json

console: $(CONSOLE_OUT)

$(CONSOLE_DEPS): web/package-lock.json web/package.json
	cd web && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CONSOLE_OUT): $(CONSOLE_DEPS) $(CONSOLE_SRC)
	cd web && $(NPM) run --silent build -- --logLevel warn

# The console's browser tests (cmd/prost, console_browser_test.go) drive
# Debian's chromium headless; install it when it is missing (as root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the console's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: build
	bin/prost dev

# Each step runs BENCH_DURATION (a Go duration); a full default run takes 5 to 7 minutes
# on 2 cores (the raw ceilings, then PROST's steps and the waits for its pipeline).
BENCH_DURATION ?= 20s

bench: build
	$(GO) build -o bin/prost-bench ./cmd/prost-bench
	BENCH_DURATION=$(BENCH_DURATION) bin/prost-bench

# The scale curves, each at a small and a large size (3M events, 500 rules,
# 1,000 Apps, a 3M-entry audit chain by default; BENCH_SCALE_* change them):
# about 3-4 minutes on 2 cores (3m17s on 2026-12-02), so not part of `make bench`.
bench-scale: build
	$(GO) build -o bin/prost-bench ./cmd/prost-bench
	BENCH_STEPS=scale BENCH_OUT=docs/benchmarks-scale.md bin/prost-bench

test: console chromium
	$(GO) test $(TESTFLAGS) $(PKGS)
	$(MAKE) --no-print-directory fuzz-short
	cd web && $(NPM) test --silent

# Fuzzing. `go test` (above) runs every Fuzz target's seeds and its
# testdata/fuzz corpus as ordinary tests; `make fuzz` fuzzes each target for
# FUZZTIME, and `make test` for FUZZTIME_SHORT (the clock includes replaying
# the corpus). Go fuzzes one target per run: each package's instrumented
# test binary is built once, then run per target. The targets are every
# `func Fuzz...` in a _test.go file, found here, so a new one is never left
# out: cmd/prost/fuzz_test.go drives the gateway's HTTP routes (see
# docs/security.md#fuzzing), pkg/ the parsers. A failing input is written to
# the package's testdata/fuzz/<target>/: fix the code, keep the file.
# Go 1.26's fuzz coordinator can end a run at -fuzztime with a bare "context
# deadline exceeded" and no failing input (golang/go#75804, fixed in Go
# 1.27); that exit alone is reported and not counted as a failure.
FUZZTIME ?= 60s
FUZZTIME_SHORT ?= 3s
FUZZPARALLEL ?= 1
FUZZ_PKGS = grep -rl --include='*_test.go' '^func Fuzz' pkg services cmd | xargs -n1 dirname | sort -u

fuzz:
	@set -eo pipefail; bin=$$(mktemp -d); trap 'rm -rf "$$bin"' EXIT; \
	for pkg in $$($(FUZZ_PKGS)); do \
		$(GO) test -c -fuzz=. -o "$$bin/fuzz.test" ./$$pkg; \
		cache=$$($(GO) env GOCACHE)/fuzz/$$(cd $$pkg && $(GO) list .); \
		if [ -n "$(PROST_FUZZ_SHORT)" ]; then cache="$$bin/cache/$$pkg"; fi; \
		for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | cut -c6- | sort); do \
			echo "fuzz $$pkg $$t for $(FUZZTIME)"; \
			st=0; (cd $$pkg && "$$bin/fuzz.test" -test.run '^$$' -test.fuzz "^$$t\$$" -test.fuzztime $(FUZZTIME) \
				-test.parallel $(FUZZPARALLEL) -test.fuzzcachedir "$$cache") >"$$bin/out" 2>&1 || st=$$?; \
			awk '/^fuzz: elapsed/ { last = $$0; next } { if (last != "") print last; last = ""; print }' "$$bin/out"; \
			if [ $$st -ne 0 ]; then \
				if grep -qx '    context deadline exceeded' "$$bin/out" && ! grep -q 'Failing input written' "$$bin/out"; then \
					echo "fuzz $$t: stopped by Go's fuzztime race (golang/go#75804, fixed in Go 1.27), no failing input: not a failure"; \
				else exit $$st; fi; \
			fi; \
		done; \
	done

# The short pass `make test` runs: every target for FUZZTIME_SHORT, from a
# few seeds (PROST_FUZZ_SHORT, see cmd/prost/fuzz_test.go) and an empty
# cache of what earlier runs found (replaying it would take the time).
fuzz-short:
	@PROST_FUZZ_SHORT=1 $(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT) PROST_FUZZ_SHORT=1

# Real processes (prost serve, nats-server built from the module cache, a private
# Postgres made with initdb) under load, one fault per scenario; about 2-3 minutes.
test-chaos:
	$(GO) test -tags chaos -count=1 -timeout 30m -v -run Chaos ./cmd/prost/

test-short: console
	$(GO) test -short $(TESTFLAGS) $(PKGS)

lint: $(CONSOLE_DEPS)
	$(GO) vet $(PKGS)
	cd web && $(NPM) run --silent typecheck
	$(GO) run ./cmd/prost contracts lint contracts/
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@if command -v sqlc >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/sqlc" ]; then $(MAKE) --no-print-directory sqlc-check; fi

fmt:
	gofmt -w $(MODULES)

tidy:
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

SQLC := $(shell command -v sqlc 2>/dev/null || echo $$($(GO) env GOPATH)/bin/sqlc)

sqlc:
	@test -x "$(SQLC)" || $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1
	cd pkg && $(SQLC) generate

sqlc-check:
	cd pkg && $(SQLC) diff
