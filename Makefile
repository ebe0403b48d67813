# collabd: the two commands a new user needs are `make run` and `make test`.
GO            ?= go
BIN           := $(CURDIR)/bin
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME      ?= 5s
BENCHTIME     ?= 1s
DATA          ?= ./collab.db
ARGS          ?=

.PHONY: run build test test-go fuzz lint bench frontend clean

## run: start the server on 127.0.0.1:8080 with the data file $(DATA)
run:
	$(GO) run ./cmd/collabd -data $(DATA) $(ARGS)

## build: build bin/collabd
build:
	$(GO) build -o $(BIN)/collabd ./cmd/collabd

## test: every test with the race detector, then short fuzz runs
test: test-go fuzz

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

## frontend: the frontend is plain files embedded as they are; nothing to build yet
frontend:
	@echo "frontend/static is served as is; no build step"

clean:
	rm -rf $(BIN)
