# collabd: the two commands a new user needs are `make run` and `make test`.
GO            ?= go
BIN           := $(CURDIR)/bin
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME      ?= 100000x # a count, not a time: a timed run can end in "context deadline exceeded" while a worker is busy
BENCHTIME     ?= 1s
# make run passes -data only when DATA is set, so that COLLABD_DATA and
# every other COLLABD_* variable in the environment reach collabd (a flag
# would beat them); collabd's own default is ./collab.db.
DATA          ?=
ARGS          ?=
PREFIX        ?= /usr/local
DESTDIR       ?=
# -buildvcs=auto overrides a GOFLAGS=-buildvcs=false from the environment:
# `collabd version` reports the commit it was built from (Go cannot find it
# in a linked git worktree, and then says "revision unknown").
BUILDFLAGS    ?= -buildvcs=auto
RUN_FLAGS      = $(if $(DATA),-data $(DATA)) $(ARGS)

# npm projects that tests drive; `make test-deps` installs them with npm ci.
NPM_DIRS      := frontend/src frontend/test/browser frontend/sdk/test $(wildcard collab/testdata/sse-node) bench/peers

LOAD_ADDR     ?= 127.0.0.1:18181
LOAD_ADMIN_ADDR ?= 127.0.0.1:18182
LOAD_ARGS     ?= -docs 20 -editors 4 -viewers 5 -rate 10 -duration 20s
# Every load client comes from 127.0.0.1: lift the per-address caps
# (-write-rate -1: the HTTP writes' per-address rate).
LOAD_SERVER_ARGS ?= -max-conns-per-addr 100000 -max-conns 100000 -max-tcp-conns-per-addr 100000 -max-tcp-conns 100000 -create-burst 100000 -write-rate -1
# The HTTP-write benchmarks of docs/performance.md ("HTTP writes and streams"):
#   make load LOAD_ARGS="-docs 1 -editors 0 -http-writes 50 -duration 20s"
#   make load LOAD_ARGS="-docs 1 -editors 20 -rate 5 -viewers 200 -stream-rate 50 -duration 60s"

ATTACK        ?= restore
ATTACK_ADDR   ?= 127.0.0.1:18183
ATTACK_ARGS   ?=
ATTACK_SERVER_ARGS ?=

.PHONY: run build install test test-deps test-go fuzz lint bench bench-peers load attack frontend sdk clean

# make bench-peers: loads EDITORSxRATE on one document, seconds of typing per run, runs per load
PEERS_ARGS    ?= -loads 50x5,100x2,200x5 -duration 20 -rounds 1

## run: build bin/collabd and serve 127.0.0.1:8080 with the data file ./collab.db (DATA=path, ARGS=flags)
# The built binary, not `go run`, so that collabd's own exit status is make's.
# On a terminal, collabd runs as the foreground job (set -m, fg): Ctrl-C then
# reaches collabd alone, which shuts down gracefully and exits 0, and so does
# make. Otherwise GNU make, receiving SIGINT itself, re-raises it once its
# child is done and ends by that signal, printing nothing (its child exited
# 0). ps tells whether this shell is in the terminal's foreground group (a
# `make run &` must not grab the terminal); without ps, the plain path runs.
# On the terminal path the shell ignores SIGTERM, since it cannot pass it on
# while fg waits: a SIGTERM to make waits for collabd rather than leaving it
# running orphaned. Stop collabd itself (Ctrl-C, or kill its pid).
run: build
	@if [ -t 0 ] && ps -o stat= -p $$$$ 2>/dev/null | grep -q '+'; then \
	  set -m; $(BIN)/collabd $(RUN_FLAGS) & trap '' TERM; fg >/dev/null; \
	else exec $(BIN)/collabd $(RUN_FLAGS); fi

## build: build bin/collabd
build:
	$(GO) build $(BUILDFLAGS) -o $(BIN)/collabd ./cmd/collabd

## install: build and install collabd to $(PREFIX)/bin (PREFIX=/usr/local; DESTDIR for packaging)
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/collabd $(DESTDIR)$(PREFIX)/bin/collabd

## test: every test with the race detector, then short fuzz runs
test: test-deps test-go fuzz

## test-deps: what the browser, Node and proxy-recipe tests need; without it they skip, saying why
test-deps:
	@missing=""; for p in nginx caddy; do [ -x /usr/sbin/$$p ] || [ -x /usr/bin/$$p ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's$$missing for the docs/deploy recipe tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "could not install$$missing: those recipe tests will skip"; \
	  else echo "$$missing missing and apt-get cannot run as root here: those recipe tests will skip"; fi; \
	fi
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
	$(GO) test -run '^$$' -fuzz '^FuzzChunkSplit$$' -fuzztime $(FUZZTIME) ./storage
	$(GO) test -run '^$$' -fuzz '^FuzzRouteAccess$$' -fuzztime $(FUZZTIME) ./collab

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
	{ $$dir/collabd -addr $(LOAD_ADDR) -data $$dir/load.db -log-level warn -admin-addr $(LOAD_ADMIN_ADDR) $(LOAD_SERVER_ARGS) > $$dir/out & pid=$$!; } && \
	for i in $$(seq 50); do grep -q listening $$dir/out 2>/dev/null && break; sleep 0.1; done && \
	$$dir/collabload -url http://$(LOAD_ADDR) -server-pid $$pid -admin-url http://$(LOAD_ADMIN_ADDR) $(LOAD_ARGS)

## bench-peers: the same full-client load against collabd and ShareDB (in memory), server CPU per op side by side (docs/cpu.md; PEERS_ARGS)
# Not part of `make test` (minutes of load); its -smoke mode is, as
# TestBenchPeersSmoke in ./bench/peers.
bench-peers: build
	@if ! command -v npm >/dev/null || ! command -v node >/dev/null; then \
	  echo "bench-peers: skipped: node and npm are needed to run ShareDB and the generator"; exit 0; fi; \
	cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null && \
	node run.mjs -collabd $(BIN)/collabd $(PEERS_ARGS)

## attack: start a throwaway collabd on $(ATTACK_ADDR) and run cmd/collabattack's $(ATTACK) attack against it (ATTACK_ARGS, ATTACK_SERVER_ARGS; `go run ./cmd/collabattack help` lists them)
attack:
	@dir=$$(mktemp -d) && trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf "$$dir"' EXIT && \
	$(GO) build -o $$dir/collabd ./cmd/collabd && $(GO) build -o $$dir/collabattack ./cmd/collabattack && \
	{ $$dir/collabd -addr $(ATTACK_ADDR) -data $$dir/attack.db -log-level error $(ATTACK_SERVER_ARGS) > $$dir/out & pid=$$!; } && \
	for i in $$(seq 50); do grep -q listening $$dir/out 2>/dev/null && break; sleep 0.1; done && \
	$$dir/collabattack $(ATTACK) -url http://$(ATTACK_ADDR) -server-pid $$pid -data $$dir/attack.db $(ATTACK_ARGS)

## frontend: rebuild frontend/static/dist from frontend/src with the esbuild and CodeMirror of its package-lock.json
frontend:
	cd frontend/src && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

## sdk: rebuild the client SDK (frontend/static/sdk, also served at /sdk/) and write its npm tarball to bin/
sdk: frontend
	@mkdir -p $(BIN)
	cd frontend/static/sdk && npm pack --pack-destination $(BIN) --loglevel=warn

clean:
	rm -rf $(BIN)
