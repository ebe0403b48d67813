# collabd: the two commands a new user needs are `make run` and `make test`.
GO            ?= go
BIN           := $(CURDIR)/bin
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME      ?= 5s
BENCHTIME     ?= 1s
DATA          ?= ./collab.db
ARGS          ?=

# npm projects that tests drive; `make test-deps` installs them with npm ci.
NPM_DIRS      := frontend/src frontend/test/browser $(wildcard collab/testdata/sse-node)

LOAD_ADDR     ?= 127.0.0.1:18181
LOAD_ARGS     ?= -docs 20 -editors 4 -viewers 5 -rate 10 -duration 20s
# Every load client comes from 127.0.0.1: lift the per-address caps.
LOAD_SERVER_ARGS ?= -max-conns-per-addr 100000 -max-conns 100000 -max-tcp-conns-per-addr 100000 -max-tcp-conns 100000 -create-burst 100000

.PHONY: run build test test-deps test-go fuzz lint bench load frontend clean

## run: start the server on 127.0.0.1:8080 with the data file $(DATA)
run:
	$(GO) run ./cmd/collabd -data $(DATA) $(ARGS)

## build: build bin/collabd
build:
	$(GO) build -o $(BIN)/collabd ./cmd/collabd

## test: every test with the race detector, then short fuzz runs
test: test-deps test-go fuzz

## test-deps: what the browser and Node tests need; without it they skip, saying why
test-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser test will skip"; \
	  else echo "chromium is missing and apt-get cannot run as root here: the browser test will skip"; fi; \
	fi
	@if command -v npm >/dev/null; then \
	  for d in $(NPM_DIRS); do \
	    (cd $$d && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || echo "npm ci in $$d failed: its tests will skip"; \
	  done; \
	else echo "npm is missing: the Node and browser tests will skip"; fi

test-go:
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeOp$$' -fuzztime $(FUZZTIME) ./ot
	$(GO) test -run '^$$' -fuzz '^FuzzTransform$$' -fuzztime $(FUZZTIME) ./ot

## lint: gofmt, go vet and staticcheck (pinned)
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOBIN=$(BIN) $(GO) install $(STATICCHECK)
	$(BIN)/staticcheck ./...

## bench: the benchmarks whose figures are in docs/performance.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## load: start a throwaway collabd on $(LOAD_ADDR) and run cmd/collabload against it ($(LOAD_ARGS))
load:
	@dir=$$(mktemp -d) && trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf "$$dir"' EXIT && \
	$(GO) build -o $$dir/collabd ./cmd/collabd && $(GO) build -o $$dir/collabload ./cmd/collabload && \
	{ $$dir/collabd -addr $(LOAD_ADDR) -data $$dir/load.db -log-level warn $(LOAD_SERVER_ARGS) > $$dir/out & pid=$$!; } && \
	for i in $$(seq 50); do grep -q listening $$dir/out 2>/dev/null && break; sleep 0.1; done && \
	$$dir/collabload -url http://$(LOAD_ADDR) $(LOAD_ARGS)

## frontend: rebuild frontend/static/dist from frontend/src with the esbuild and CodeMirror of its package-lock.json
frontend:
	cd frontend/src && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

clean:
	rm -rf $(BIN)
