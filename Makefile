# Image URL to use all building/pushing image targets
IMG ?= download-operator:dev
# YEAR fills the boilerplate header. It is pinned so that regenerating next year leaves the
# committed files unchanged.
YEAR ?= 2026

# Tools are built from Go modules by hack/tools.sh and cached outside the clone, keyed by version
# (see the script for the versions). Each variable expands to the cached binary, building it first
# when it is missing.
TOOLS = hack/tools.sh
CONTROLLER_GEN = $$($(TOOLS) controller-gen)/controller-gen
KUSTOMIZE = $$($(TOOLS) kustomize)/kustomize

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# CONTAINER_TOOL defines the container tool to be used for building images.
# Be aware that the target commands are only tested with Docker which is
# scaffolded by default. However, you might want to replace it to use other
# tools. (i.e. podman)
CONTAINER_TOOL ?= docker

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

# The help target prints out all targets with their descriptions organized
# beneath their categories. The categories are represented by '##@' and the
# target descriptions by '##'. The awk command is responsible for reading the
# entire set of makefiles included in this invocation, looking for lines of the
# file as xyz: ## something, and then pretty-format the target and help. Then,
# if there's a line with ##@ something, that gets pretty-printed as a category.
# More info on the usage of ANSI control characters for terminal formatting:
# https://en.wikipedia.org/wiki/ANSI_escape_code#SGR_parameters
# More info on the awk command:
# http://linuxcommand.org/lc3_adv_awk.php

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate WebhookConfiguration, ClusterRole and CustomResourceDefinition objects.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	@# Helm installs CRDs from crds/ and never templates them, so the chart carries a plain copy.
	cp config/crd/bases/download.operator.dev_downloads.yaml charts/download-operator/crds/

.PHONY: generate
generate: ## Generate code containing DeepCopy, DeepCopyInto, and DeepCopyObject method implementations.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt",year=$(YEAR) paths="./..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: test
test: manifests generate fmt vet test-alerts ## Run the unit and envtest suites against kube-apiserver, etcd and MinIO built from source.
	KUBEBUILDER_ASSETS="$$($(TOOLS) envtest-assets)" MINIO_BIN="$$($(TOOLS) minio)/minio" MC_BIN="$$($(TOOLS) mc)/mc" HELM_BIN="$$($(TOOLS) helm)/helm" \
		go test -count=1 $$(go list ./... | grep -v /e2e) -coverprofile cover.out
	$(MAKE) web-test

# The chart's alert rules: one file, which templates/prometheusrule.yaml renders and these
# promtool unit tests load. promtool is built by hack/tools.sh like every other tool, so a
# missing or broken build fails here instead of skipping the tests.
ALERT_RULES = charts/download-operator/files/alerts.yaml
ALERT_TESTS = test/alerts/alerts_test.yaml

.PHONY: test-alerts
test-alerts: ## Check the chart's alert rules and run their promtool unit tests (test/alerts).
	promtool="$$($(TOOLS) promtool)/promtool"; \
		"$$promtool" check rules $(ALERT_RULES) && "$$promtool" test rules $(ALERT_TESTS)

.PHONY: web-test
web-test: ## Type-check and unit-test the web UI (web/: the React hook, DownloadButton and demo page).
	cd web && npm ci && npm run typecheck && npm test

.PHONY: web-build
web-build: ## Build the demo page (web/dist, served by the facade) and the library (web/dist-lib).
	cd web && npm ci && npm run build

.PHONY: test-e2e
test-e2e: web-build ## Run the e2e suite and the browser tests on the local cluster (starts the demo stack if needed; stop it with make demo-down).
	go test -tags e2e ./test/e2e/ -count=1 -timeout 45m -v -ginkgo.v
	@# The Go suite brought the stack up; this rolls the facade if the UI changed since.
	hack/demo/up >/dev/null
	cd web && npm run test:e2e

# DRILLS selects drills by label, e.g. DRILLS=K1 (the Kueue drill alone) or DRILLS='drill && !K1'.
DRILLS ?= drill

.PHONY: test-drills
test-drills: ## Run the reliability and security drills on the local cluster (docs/reliability.md); DRILLS=<label filter> picks some.
	go test -tags e2e ./test/drills/ -count=1 -timeout 60m -v -ginkgo.v -ginkgo.label-filter='$(DRILLS)'

# One run of every figure takes about 30 min here (P5, P6 and P8 bring up the demo cluster);
# BENCH_RUNS=3 gives each figure's spread over three runs, in about three times as long.
BENCH_RUNS ?= 1

.PHONY: bench
bench: ## Measure the performance figures (docs/performance.md) and redraw the plot; needs wrk (apt).
	@command -v wrk >/dev/null || apt-get install -y -q --no-install-recommends wrk
	KUBEBUILDER_ASSETS="$$($(TOOLS) envtest-assets)" MINIO_BIN="$$($(TOOLS) minio)/minio" MC_BIN="$$($(TOOLS) mc)/mc" HELM_BIN="$$($(TOOLS) helm)/helm" go run ./hack/bench --out docs --runs $(BENCH_RUNS)

.PHONY: bench-check
bench-check: ## Measure afresh; fail only on a clear regression against docs/performance-results.json.
	@command -v wrk >/dev/null || apt-get install -y -q --no-install-recommends wrk
	KUBEBUILDER_ASSETS="$$($(TOOLS) envtest-assets)" MINIO_BIN="$$($(TOOLS) minio)/minio" MC_BIN="$$($(TOOLS) mc)/mc" HELM_BIN="$$($(TOOLS) helm)/helm" go run ./hack/bench --out docs --check --runs 1

.PHONY: tools
tools: ## Build and cache every tool the tests and the demo need (a cold build takes about 28 min, kube-apiserver alone 9).
	$(TOOLS) envtest-assets minio mc controller-gen kustomize helm promtool \
		kube-controller-manager kube-scheduler kubelet kube-proxy >/dev/null

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files are not committed and current.
	@git diff --exit-code -- api config || { \
		echo "Generated files are stale: run 'make manifests generate' and commit the result." >&2; exit 1; }

.PHONY: demo
demo: ## Start the whole system on this machine (cluster, MinIO, chart) and leave it running.
	hack/demo/up

.PHONY: demo-down
demo-down: ## Stop everything make demo started (PURGE=1 also deletes its data).
	hack/demo/down $(if $(PURGE),--purge)

.PHONY: lint
lint: golangci-lint ## Run golangci-lint linter
	"$(GOLANGCI_LINT)" run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint linter and perform fixes
	"$(GOLANGCI_LINT)" run --fix

.PHONY: lint-config
lint-config: golangci-lint ## Verify golangci-lint linter configuration
	"$(GOLANGCI_LINT)" config verify

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the download-operator binary.
	go build -o bin/download-operator cmd/main.go

.PHONY: run
run: manifests generate fmt vet ## Run a controller from your host.
	go run ./cmd/main.go

# If you wish to build the manager image targeting other platforms you can use the --platform flag.
# (i.e. docker build --platform linux/arm64). However, you must enable docker buildKit for it.
# More info: https://docs.docker.com/develop/develop-images/build_enhancements/
# Override BASE_IMAGE to build from another registry, e.g.
# make docker-build IMG=<img> BASE_IMAGE=docker.io/library/golang:1.26
.PHONY: docker-build
docker-build: ## Build docker image with the manager.
	$(CONTAINER_TOOL) build $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) -t ${IMG} .

.PHONY: docker-push
docker-push: ## Push docker image with the manager.
	$(CONTAINER_TOOL) push ${IMG}

# PLATFORMS defines the target platforms for the manager image be built to provide support to multiple
# architectures. (i.e. make docker-buildx IMG=myregistry/mypoperator:0.0.1). To use this option you need to:
# - be able to use docker buildx. More info: https://docs.docker.com/build/buildx/
# - have enabled BuildKit. More info: https://docs.docker.com/develop/develop-images/build_enhancements/
# - be able to push the image to your registry (i.e. if you do not set a valid value via IMG=<myregistry/image:<tag>> then the export will fail)
# To adequately provide solutions that are compatible with multiple platforms, you should consider using this option.
PLATFORMS ?= linux/arm64,linux/amd64,linux/s390x,linux/ppc64le
.PHONY: docker-buildx
docker-buildx: ## Build and push docker image for the manager for cross-platform support
	# copy existing Dockerfile and insert --platform=${BUILDPLATFORM} into Dockerfile.cross, and preserve the original Dockerfile
	sed -e '1 s/\(^FROM\)/FROM --platform=\$$\{BUILDPLATFORM\}/; t' -e ' 1,// s//FROM --platform=\$$\{BUILDPLATFORM\}/' Dockerfile > Dockerfile.cross
	- $(CONTAINER_TOOL) buildx create --name download-operator-builder
	$(CONTAINER_TOOL) buildx use download-operator-builder
	- $(CONTAINER_TOOL) buildx build --push --platform=$(PLATFORMS) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) --tag ${IMG} -f Dockerfile.cross .
	- $(CONTAINER_TOOL) buildx rm download-operator-builder
	rm Dockerfile.cross

.PHONY: build-installer
build-installer: manifests generate ## Generate a consolidated YAML with CRDs and deployment.
	mkdir -p dist
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests ## Install CRDs into the K8s cluster specified in ~/.kube/config.
	@out="$$( "$(KUSTOMIZE)" build config/crd 2>/dev/null || true )"; \
	if [ -n "$$out" ]; then echo "$$out" | "$(KUBECTL)" apply -f -; else echo "No CRDs to install; skipping."; fi

.PHONY: uninstall
uninstall: manifests kustomize ## Uninstall CRDs from the K8s cluster specified in ~/.kube/config. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	@out="$$( "$(KUSTOMIZE)" build config/crd 2>/dev/null || true )"; \
	if [ -n "$$out" ]; then echo "$$out" | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -; else echo "No CRDs to delete; skipping."; fi

.PHONY: deploy
deploy: manifests ## Deploy controller to the K8s cluster specified in ~/.kube/config.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" apply -f -

.PHONY: undeploy
undeploy: ## Undeploy controller from the K8s cluster specified in ~/.kube/config. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool Binaries
KUBECTL ?= kubectl
GOLANGCI_LINT = $(LOCALBIN)/golangci-lint

GOLANGCI_LINT_VERSION ?= v2.13.1
.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Download golangci-lint locally if necessary.
$(GOLANGCI_LINT): $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))
	@test -f .custom-gcl.yml && { \
		echo "Building custom golangci-lint with plugins..." && \
		$(GOLANGCI_LINT) custom --destination $(LOCALBIN) --name golangci-lint-custom && \
		mv -f $(LOCALBIN)/golangci-lint-custom $(GOLANGCI_LINT); \
	} || true

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)")" "$(1)"
endef
