# Portcullis. `make run` serves the sample policies from files; `make test` is what CI runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
BIN       := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
HELM_VERSION ?= v3.22.0
HELM := $(BIN)/helm-$(HELM_VERSION)
export HELM
BENCHSTAT_VERSION ?= v0.0.0-20260908200009-22c9c6c9d4da
BENCHSTAT := $(BIN)/benchstat-$(BENCHSTAT_VERSION)
ENVTEST_ASSETS := $(BIN)/k8s
export KUBEBUILDER_ASSETS := $(ENVTEST_ASSETS)

# Long tests (envtest, race) are bounded; `make test` stays well under 20 minutes on 2 cores.
TEST_FLAGS ?= -race -count=1 -timeout=15m

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy functions.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into config/, and the chart's CRD templates.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=portcullis paths=./controllers/... output:rbac:artifacts:config=config/rbac
	hack/sync-chart-crds.sh

.PHONY: verify
verify: generate manifests ## Fail when generated files or go.mod drift from what the sources say.
	$(GO) mod tidy
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$unformatted" || { echo "gofmt needed: $$unformatted"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/...
	git diff --exit-code -- api config charts go.mod go.sum || { echo "generated files drifted: run 'make generate manifests' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --porcelain -- api config charts; echo "untracked generated files: commit them"; exit 1; }

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
IMAGE   ?= portcullis:$(VERSION)

.PHONY: build
build: ## Build bin/portcullis (version and commit stamped in).
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/portcullis ./cmd/portcullis

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

.PHONY: run
run: build ## Serve config/samples from files with the sample authorizer, and print curl lines to try.
	hack/run.sh

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd into bin/k8s (once).
	hack/setup-envtest.sh $(ENVTEST_ASSETS)

.PHONY: helm
helm: $(HELM) ## Install helm into bin/ (the chart tests run it).

$(HELM):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(BIN)/helm $@

.PHONY: nginx
nginx: ## Install nginx from Debian if missing (the end-to-end test drives it).
	@command -v nginx >/dev/null 2>&1 || { \
	  echo ">> installing nginx (Debian package)"; \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null; }

.PHONY: test
test: envtest helm nginx ## Unit, golden, chart, envtest and nginx end-to-end tests, with the race detector.
	$(GO) test $(TEST_FLAGS) ./...
	$(MAKE) --no-print-directory test-e2e

# The fault suite at full size: 12,000 requests through gRPC, the engine and the authorizer
# client against a custom authorizer serving every fault (test/faults). Without -race, so the
# latencies it reports (the bound is authorizer timeout + 50 ms) are the product's, not the
# race detector's; `make test` runs the same test with -race at a bounded size.
FAULT_REQUESTS ?= 12000

.PHONY: test-faults
test-faults: ## Fault-injection suite at full size (PORTCULLIS_FAULT_REQUESTS=$(FAULT_REQUESTS)).
	PORTCULLIS_FAULT_REQUESTS=$(FAULT_REQUESTS) $(GO) test -count=1 -v -timeout=15m -run '^TestFaults$$' ./test/faults/

BENCH_COUNT ?= 6
# `make bench` runs the load test on the small world only; `make bench-e2e` runs both worlds.
BENCH_LOADTEST_FLAGS ?= -worlds=small

.PHONY: test-e2e
test-e2e: envtest build nginx ## nginx auth_request -> Portcullis (out of cluster) -> kube-apiserver, end to end (needs nginx, kubectl).
	$(GO) test -tags e2e -count=1 -v -timeout=3m ./test/e2e/

.PHONY: bench
bench: $(BENCHSTAT) envtest ## Micro-benchmarks (benchstat summary, figures against their targets) and the small-world load test.
	@mkdir -p $(BIN)
	$(GO) test -run='^$$' -bench='Build' -benchmem -benchtime=5x -count=$(BENCH_COUNT) ./authz/compile/ | tee $(BIN)/bench.txt
	$(GO) test -run='^$$' -bench='YAMLToJSON|Cache|SecretSource' -benchmem -count=$(BENCH_COUNT) ./controllers/ | tee -a $(BIN)/bench.txt
	$(GO) test -run='^$$' -bench='Lookup' -benchmem -count=$(BENCH_COUNT) ./authz/compile/ | tee -a $(BIN)/bench.txt
	$(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCH_COUNT) ./authz/engine/ ./authz/signing/ ./authz/authorizer/ ./authz/extauthz/ ./authz/observe/ | tee -a $(BIN)/bench.txt
	$(MAKE) --no-print-directory bench-e2e LOADTEST_FLAGS="$(BENCH_LOADTEST_FLAGS)" | tee -a $(BIN)/bench.txt
	@echo; echo "== summary (benchstat: median and spread of the $(BENCH_COUNT) runs)"; $(BENCHSTAT) $(BIN)/bench.txt
	@echo; echo "== against the targets (each run)"; awk -f hack/bench-report.awk $(BIN)/bench.txt

# hack/loadtest: Portcullis side by side with a protocol FLOOR (an ext_authz server answering OK
# unseen), each its own process on loopback; LOADTEST_FLAGS e.g. -worlds=small -duration=4s
# -cpuprofile=two-factor (see `go doc ./hack/loadtest`).
LOADTEST_FLAGS ?=
SOAK_DURATION ?= 10m

.PHONY: bench-e2e
bench-e2e: build ## Load test against a protocol FLOOR: throughput, latency, CPU, RSS, cold start (small and large worlds).
	$(GO) build -o $(BIN)/loadtest ./hack/loadtest
	$(BIN)/loadtest -portcullis=$(BIN)/portcullis $(LOADTEST_FLAGS)

.PHONY: soak
soak: build ## Soak for SOAK_DURATION with authorizer faults; fails on a fault allowed undegraded or growth (not in CI).
	$(GO) build -o $(BIN)/loadtest ./hack/loadtest
	$(BIN)/loadtest soak -portcullis=$(BIN)/portcullis -duration=$(SOAK_DURATION) $(LOADTEST_FLAGS)

$(BENCHSTAT):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
	mv $(BIN)/benchstat $@

# The world of bench-propagation: 10,000 APIBindings and 100,000 Credentials with their Secrets
# (creating them through the API takes about 10 minutes on 2 cores). Smaller for a quick look:
# make bench-propagation PROPAGATION_BINDINGS=100 PROPAGATION_CREDENTIALS=1000 PROPAGATION_WRITES=20
PROPAGATION_BINDINGS ?= 10000
PROPAGATION_CREDENTIALS ?= 100000
PROPAGATION_WRITES ?= 100

.PHONY: bench-propagation
bench-propagation: envtest ## API write -> first changed decision (p50/p99), idle and under gRPC load, against a real kube-apiserver.
	@mkdir -p $(BIN)
	PORTCULLIS_BENCH_BINDINGS=$(PROPAGATION_BINDINGS) PORTCULLIS_BENCH_CREDENTIALS=$(PROPAGATION_CREDENTIALS) PORTCULLIS_BENCH_WRITES=$(PROPAGATION_WRITES) \
	  $(GO) test -run='^$$' -bench='^BenchmarkPropagation$$' -benchtime=1x -timeout=90m ./controllers/ | tee $(BIN)/bench-propagation.txt
	@echo; echo "== against the targets"; awk -f hack/bench-report.awk $(BIN)/bench-propagation.txt

# Per fuzz target; any go test -fuzztime value ("30s", "5000x").
FUZZTIME ?= 10s

.PHONY: fuzz
fuzz: ## Run every fuzz target (found in the sources) for FUZZTIME each; a crasher lands in <pkg>/testdata/fuzz/.
	FUZZTIME=$(FUZZTIME) GO=$(GO) hack/fuzz.sh

$(CONTROLLER_GEN):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(BIN)/controller-gen $@

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
