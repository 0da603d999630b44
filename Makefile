# dbha — see README.md. The two commands that matter: `make demo`, `make test`.
GO        ?= go
BIN       := bin
GOTEST_TIMEOUT ?= 40m
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build deps demo demo-down test test-short bench-vip lint fmt clean

all: build

build:
	$(GO) build -o $(BIN)/dbctl ./cmd/dbctl
	$(GO) build -o $(BIN)/dbagent ./cmd/dbagent

## deps: install the Debian packages the sandbox and tests need (idempotent, root)
deps:
	./scripts/install-deps

## demo: install deps, build, and run a live sandbox cluster
demo: deps build
	-@$(BIN)/dbctl sandbox down >/dev/null 2>&1
	$(BIN)/dbctl sandbox up
	$(BIN)/dbctl sandbox status
	@./scripts/demo-wait $(BIN)/dbctl
	$(BIN)/dbctl status
	@./scripts/demo-help

## demo-down: stop the sandbox started by `make demo`
demo-down:
	$(BIN)/dbctl sandbox down

## test: the whole suite, sandbox and chaos tests included (needs root and `make deps`)
test: build
	$(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) ./...

## test-short: unit tests only, no namespaces
test-short:
	$(GO) test -count=1 -short ./...

## bench-vip: VIP failover, dbha vs keepalived, on sandboxes (root, minutes; docs/benchmarks.md)
bench-vip:
	DBHA_BENCH=1 $(GO) test -count=1 -v -run 'TestBenchVIP' -timeout 30m ./tests/bench/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
