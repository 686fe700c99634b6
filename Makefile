# mcpguard — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/mcpguard/mcpguard/internal/app.Version=$(VERSION)
PKGS := ./...
# Fuzz targets run briefly in `make test`; longer with `make fuzz FUZZTIME=5m`.
FUZZTIME ?= 10s

.PHONY: build run test unit fuzz-short fuzz bench lint tidy clean help soak demo

help:
	@echo "make run    start mcpguard with its embedded development config"
	@echo "make test   run the whole suite (unit with -race, e2e, short fuzz)"
	@echo "make soak   10-minute soak through the emulator, then the capacity table (SOAK_DURATION, SOAK_RATE)"
	@echo "make demo   a narrated tour: allowed, blocked, masked, approved calls and their recording (DEMO_AUTO_APPROVE=1)"
	@echo "make build | bench | fuzz | lint | clean"

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mcpguard ./cmd/mcpguard

run: build
	./bin/mcpguard serve

# The emulator (envoy/envoy.yaml), mcpguard (demo/mcpguard.yaml, demo/policy.yaml) and the demo MCP
# server on loopback ports, then a scripted agent. DEMO_AUTO_APPROVE=1 approves the held call itself.
demo:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/mcpguard ./e2e/cmd/envoy-emulator ./demo/cmd/demo-server ./demo/cmd/demo
	./bin/demo -bin bin -envoy envoy/envoy.yaml

test: unit fuzz-short

unit:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# Every Fuzz target found in the tree runs for FUZZTIME on top of its committed seeds.
fuzz-short:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1x $$pkg >/tmp/mcpguard-fuzz.log 2>&1 || { cat /tmp/mcpguard-fuzz.log; exit 1; }; \
	  done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(or $(FUZZTIME),5m)

# The long soak through the emulator (allowed, denied, masked and approved calls at a steady
# rate; no goroutine or memory growth, every exchange recorded and verified), then the
# capacity table. `make soak SOAK_DURATION=30m SOAK_RATE=80`; SOAK_CAPACITY=0 skips capacity.
SOAK_DURATION ?= 10m
SOAK_RATE ?= 40
SOAK_CAPACITY ?= 30s
soak:
	set -o pipefail; $(GO) run ./e2e/cmd/soak -duration $(SOAK_DURATION) -rate $(SOAK_RATE) -capacity $(SOAK_CAPACITY) | tee soak.out

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 $(PKGS) | tee bench.out

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

clean:
	rm -rf bin data bench.out soak.out
