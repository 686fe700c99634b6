# mcpguard — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
# Every build and test uses Go 1.27.3, which the go command fetches from the module proxy on
# first use (~76 MB): earlier toolchains carry standard-library vulnerabilities on mcpguard's
# path (net/http HTTP/2, crypto/tls, crypto/x509; see `make lint`). `make GOTOOLCHAIN=local`
# uses whatever go is installed instead.
export GOTOOLCHAIN ?= go1.27.3
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/mcpguard/mcpguard/internal/app.Version=$(VERSION)
PKGS := ./...
# Test servers and tools that `make test` builds (versitygw) live in bin/, found first on PATH.
export PATH := $(CURDIR)/bin:$(PATH)
# Fuzz targets run briefly in `make test` (5 s each on top of the committed seeds, which the unit
# phase runs too: 41 targets keep the whole suite within 20 minutes on 2 cores); longer with
# `make fuzz FUZZTIME=5m`.
FUZZTIME ?= 5s

.PHONY: build run test deps unit fuzz-short fuzz bench capacity compare lint vulndb e2e-compose tidy clean help soak demo

help:
	@echo "make run    start mcpguard with its embedded development config"
	@echo "make test   run the whole suite (unit with -race, e2e, short fuzz)"
	@echo "make soak   10-minute soak through the emulator, then the capacity table (SOAK_DURATION, SOAK_RATE)"
	@echo "make demo   a narrated tour: allowed, blocked, masked, approved calls and their recording (DEMO_AUTO_APPROVE=1)"
	@echo "make lint   golangci-lint and govulncheck (offline database), a few minutes"
	@echo "make e2e-compose  the e2e scenarios through real Envoy (needs docker compose)"
	@echo "make build | bench | capacity | compare BASE=REV | fuzz | clean"

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mcpguard ./cmd/mcpguard

# RUN_ARGS passes flags to serve, e.g. RUN_ARGS="--config my.yaml".
run: build
	./bin/mcpguard serve $(RUN_ARGS)

# The emulator (envoy/envoy.yaml), mcpguard (demo/mcpguard.yaml, demo/policy.yaml) and the demo MCP
# server on loopback ports, then a scripted agent. DEMO_AUTO_APPROVE=1 approves the held call itself.
demo:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/mcpguard ./e2e/cmd/envoy-emulator ./demo/cmd/demo-server ./demo/cmd/demo
	./bin/demo -bin bin -envoy envoy/envoy.yaml

test: deps unit fuzz-short

# What the tests need on a fresh machine (Debian packages, versitygw in bin/): installed when
# missing, or one sentence saying what to install.
deps:
	GO=$(GO) ./scripts/test-deps.sh

# deploy/ is a module of its own (Helm and Kubernetes' module graph stays out of mcpguard's
# build and govulncheck): its tests render the chart and validate the recipes offline. No
# -race there: they start no goroutines of mcpguard's, and a race build of Kubernetes is slow.
unit:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	@cd deploy && $(GO) mod tidy -diff >/dev/null || { echo "deploy/go.mod is behind mcpguard's go.mod (it requires mcpguard through a replace): run (cd deploy && go mod tidy)"; exit 1; }
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

# Every Fuzz target found in the tree runs for FUZZTIME on top of its committed seeds.
fuzz-short:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz-short.sh

# Longer fuzzing: 5m per target unless FUZZTIME is given on the command line.
fuzz: FUZZTIME = 5m
fuzz: fuzz-short

# The long soak through the emulator (allowed, denied, masked and approved calls at a steady
# rate; no goroutine or memory growth, every exchange recorded and verified), then the
# capacity table. `make soak SOAK_DURATION=30m SOAK_RATE=80`; SOAK_CAPACITY=0 skips capacity.
SOAK_DURATION ?= 10m
SOAK_RATE ?= 40
SOAK_CAPACITY ?= 30s
soak:
	set -o pipefail; $(GO) run ./e2e/cmd/soak -duration $(SOAK_DURATION) -rate $(SOAK_RATE) -capacity $(SOAK_CAPACITY) | tee soak.out

# The benchmarks that track mcpguard's own cost, compared with bench/results.txt by benchstat
# (interleaved rounds; BENCH_COUNT, default 6); the new results replace the file.
bench:
	GO=$(GO) scripts/bench.sh

# Rewrites the measured capacity table in docs/capacity.md (CAPACITY_DURATION per class).
capacity:
	GO=$(GO) scripts/capacity.sh

# Measures this checkout against BASE=REV side by side (capacity, low-rate soak, mcpload).
compare:
	GO=$(GO) BASE=$(BASE) scripts/compare.sh

# Tools are pinned in tools/go.mod. govulncheck reads an offline database indexed from the
# golang.org/x/vulndb module (fetched through the Go proxy like any module), because the online
# database is unreachable from the build machines. Takes a few minutes; not part of `make test`.
TOOL := $(GO) tool -modfile=tools/go.mod
VULNDB := $(CURDIR)/bin/vulndb

lint: vulndb
	$(GO) vet $(PKGS)
	$(TOOL) golangci-lint run $(PKGS)
	cd deploy && $(GO) tool -modfile=../tools/go.mod golangci-lint run ./...
	$(TOOL) govulncheck -db file://$(VULNDB) $(PKGS)

# The vulndb version in tools/go.mod is the database's date: `cd tools && go get golang.org/x/vulndb@latest` refreshes it.
vulndb:
	@set -e; src=$$(cd tools && $(GO) mod download -json golang.org/x/vulndb | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -d "$$src/data/osv" || { echo "vulndb: no data/osv in $$src"; exit 1; }; \
	  rm -rf $(VULNDB); $(TOOL) indexdb -vulns "$$src/data/osv" -out $(VULNDB); \
	  echo "vulndb: $$(ls $(VULNDB)/ID/*.json | wc -l) advisories from $$src"

# The e2e scenarios through real Envoy: start the stack, run them, stop it. Needs a container
# engine with compose; see e2e/docker-compose.yaml.
COMPOSE ?= docker compose
COMPOSE_FILE := e2e/docker-compose.yaml
e2e-compose:
	$(COMPOSE) -f $(COMPOSE_FILE) up --build -d --wait envoy mcpguard
	@for i in $$(seq 60); do curl -fsS -o /dev/null http://127.0.0.1:9002/readyz && exit 0; sleep 1; done; \
	  echo "mcpguard not ready after 60s"; $(COMPOSE) -f $(COMPOSE_FILE) logs --no-color; exit 1
	MCPGUARD_E2E_GATEWAY=http://127.0.0.1:8080 \
	MCPGUARD_E2E_TOKEN_CMD="$(COMPOSE) -f $(COMPOSE_FILE) exec -T mcpguard mcpguard token --config /etc/mcpguard/config.yaml" \
	  $(GO) test -count=1 -v -run 'TestScenarios' ./e2e/compose/ ; rc=$$?; \
	  $(COMPOSE) -f $(COMPOSE_FILE) logs --no-color > e2e-compose.log 2>&1; \
	  $(COMPOSE) -f $(COMPOSE_FILE) down -v; exit $$rc

clean:
	rm -rf bin data bench.out soak.out e2e-compose.log
