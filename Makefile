# pretoken — build, demo, test. Every target needs only Go (1.26) unless it says otherwise.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
DIST      := dist
POLICY    ?=
FUZZTIME  ?= 20s
BENCHTIME ?= 1s
PKGS      := ./...

.PHONY: help build demo test test-unit lint bench fuzz clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/pretoken: $(shell find . -name '*.go' -not -path './.git/*') go.mod go.sum
	$(GO) build -o $@ ./cmd/pretoken

build: ## Build dist/trigger.zip: linux/arm64 bootstrap for provided.al2023 (POLICY=file bundles a policy as policy.yaml).
	@mkdir -p $(DIST)/pkg
	rm -f $(DIST)/pkg/* $(DIST)/trigger.zip
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o $(DIST)/pkg/bootstrap ./cmd/trigger
	$(if $(POLICY),cp $(POLICY) $(DIST)/pkg/policy.yaml)
	$(GO) run ./internal/zipdir -o $(DIST)/trigger.zip $(DIST)/pkg
	@ls -l $(DIST)/trigger.zip

demo: $(BIN)/pretoken ## Run the trigger on every example event with the example policy.
	@$(BIN)/pretoken validate -f examples/policy.yaml
	@echo
	@$(BIN)/pretoken simulate --summary --policy examples/policy.yaml $(addprefix --event ,$(sort $(wildcard examples/events/*.json)))

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: lint ## Lint, every test with the race detector, the Lambda build and the demo.
	$(GO) test -race -count=1 $(PKGS)
	$(MAKE) --no-print-directory build demo >/dev/null

bench: ## Run the benchmarks.
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

fuzz: ## Run each fuzz target for FUZZTIME (default 20s).
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean: ## Remove build output.
	rm -rf $(BIN) $(DIST)
