# certwatch build and test entry points.
GO       ?= go
VERSION  ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -s -w \
	-X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(shell whoami)@$(shell hostname) \
	-X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: build test run
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o certwatch .

test:
	./scripts/test.sh

run:
	$(GO) run . --config.file=config.example.yml

# Container image (Dockerfile): FROM scratch plus a static binary, the CA
# bundle and deploy/container/config.yml. image-context prepares
# $(IMAGE_BUILD_DIR) (the binary, built as by `make build`, and the CA bundle);
# image builds it with podman's vfs storage, which works without pulling a
# base image. With Docker elsewhere: make image IMAGE_BUILDER="docker build"
# (or make image-context, then docker build with the same --build-arg flags).
# The binary is always built for Linux, for IMAGE_GOARCH (default: this
# machine's); CA_BUNDLE is the PEM bundle to ship (e.g. /etc/ssl/cert.pem on macOS).
IMAGE           ?= ghcr.io/certwatch/certwatch
IMAGE_TAG       ?= $(VERSION)
IMAGE_BUILDER   ?= podman --storage-driver=vfs build
IMAGE_BUILD_DIR ?= .build
IMAGE_GOARCH    ?= $(shell $(GO) env GOARCH)
CA_BUNDLE       ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: image-context image chart-sync
image-context:
	mkdir -p $(IMAGE_BUILD_DIR)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_GOARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(IMAGE_BUILD_DIR)/certwatch .
	install -m 0644 $(CA_BUNDLE) $(IMAGE_BUILD_DIR)/ca-certificates.crt

image: image-context
	$(IMAGE_BUILDER) -f Dockerfile -t $(IMAGE):$(IMAGE_TAG) --platform linux/$(IMAGE_GOARCH) \
		--build-arg BUILD_DIR=$(IMAGE_BUILD_DIR) \
		--build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$(REVISION) \
		.

# The Helm chart cannot read files outside its folder: refresh its copies of
# the alert rules and dashboards (deploy/chart_test.go fails when they drift).
chart-sync:
	mkdir -p charts/certwatch/files/alerts charts/certwatch/files/dashboards
	rm -f charts/certwatch/files/dashboards/*.json
	cp alerts/certwatch.rules.yml charts/certwatch/files/alerts/
	cp dashboards/certwatch-*.json charts/certwatch/files/dashboards/
