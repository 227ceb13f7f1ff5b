# pqrelay — the two commands a newcomer runs:
#   make demo   a relay pair on the in-memory store, the bundled load test, the table
#   make test   everything CI checks
# Both install what they need (Debian packages) and can be run again safely.

GO        ?= go
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report "context deadline exceeded" as a failure when the time runs out
# while a worker is busy (golang/go#75804, fixed in Go 1.27), which a loaded
# CI machine hits now and then. 100,000 inputs take 1-10 s per target here.
FUZZTIME  ?= 100000x
# Targets that drive real relays over TCP run about 3,000 inputs a second,
# not hundreds of thousands: they get a count of their own.
FUZZTIME_NET ?= 10000x
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PACKAGES  := $(shell $(GO) list ./...)
# The image and what -version prints; make image IMAGE=registry/pqrelay:1.0.
IMAGE     ?= localhost/pqrelay:dev
VERSION   ?= $(shell git describe --tags --always 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: all build test deps demo-deps lint test-race test-alloc test-fips test-purego fuzz-short fuzz demo bench clean image image-binary test-deploy

all: build

build:
	$(GO) build -o bin/ ./cmd/...

# deps installs the Debian packages tests need; a no-op once they are there:
# a real redis-server, promtool (package prometheus) to lint the metrics,
# buildah, podman and runc for the image, kubectl for kustomize, curl and
# openssl as the TLS interoperability test's clients.
DEB_DEPS := redis-server:redis-server promtool:prometheus buildah:buildah podman:podman runc:runc kubectl:kubernetes-client curl:curl openssl:openssl
deps:
	@missing=; for dep in $(DEB_DEPS); do \
		command -v $${dep%%:*} >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (tests use the real tools)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

test: deps lint test-race test-alloc test-fips test-purego fuzz-short test-deploy

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags purego ./codec/

# Every package with -race. The allocation tests are built without -race
# (the race detector allocates), so they run on their own in test-alloc.
test-race:
	$(GO) test -race -count=1 -timeout 10m ./...

test-alloc:
	$(GO) test -count=1 -run 'Alloc' ./...

# The pair end to end in Go's FIPS 140-3 mode (every primitive from the FIPS
# module, the MLKEM768-P256 suite), and TLS keeping to the approved groups.
test-fips:
	GODEBUG=fips140=on $(GO) test -count=1 -run 'TestReferenceExample|TestFaithful|TestTamperAndReplay|TestRestartB$$|TestTLSPair' ./proxy/
	GODEBUG=fips140=on $(GO) test -count=1 -run 'TestFIPSGroups|TestMutualTLS' ./internal/tlsconf/

# The codec built without its assembly (the pure-Go twins a non-amd64
# machine runs); TestSuiteWithoutAssembly covers amd64 with AVX2 disabled.
test-purego:
	$(GO) test -tags purego -count=1 ./codec/

# A short run of every fuzz target, seeds from testdata/fuzz included.
fuzz-short:
	@set -e; for pkg in $(PACKAGES); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			n=$(FUZZTIME); case $$target in FuzzRawRequest) n=$(FUZZTIME_NET);; esac; \
			echo "fuzz $$pkg $$target ($$n)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $$n $$pkg; \
		done; \
	done

# Two minutes per target, for a person at the keyboard: a bare "context
# deadline exceeded" with no failing input written is the Go bug above.
fuzz:
	$(MAKE) fuzz-short FUZZTIME=2m FUZZTIME_NET=2m

# The README's first command: DURATION=30s make demo for longer tiers.
demo: demo-deps
	./scripts/demo.sh

# demo-deps installs what scripts/demo.sh calls besides Go; a no-op once there.
demo-deps:
	@command -v curl >/dev/null 2>&1 || { \
		echo "installing curl (the demo waits for its servers with it)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq curl >/dev/null; }

# The binary of the image: static (no libc in the image), without build
# paths, with version and commit for -version and pqrelay_build_info.
image-binary:
	@mkdir -p build/image
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath \
		-ldflags '-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)' \
		-o build/image/pqrelay ./cmd/pqrelay
	cp $(CA_BUNDLE) build/image/ca-certificates.crt

# --timestamp 0: no build time in the image, so the same binary and CA
# bundle give the same digest (checked by the deploy tests).
image: image-binary
	buildah bud --quiet --timestamp 0 --build-arg VERSION=$(VERSION) --build-arg REVISION=$(COMMIT) \
		-f Dockerfile -t $(IMAGE) build/image

# deploy/ is its own Go module (k8s.io/api stays out of the relay's go.mod):
# the image built and run as a pair of containers, the Kubernetes manifests
# rendered and decoded strictly.
test-deploy: deps
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./codec/ ./session/ ./loadtest/
	cd benchmarks/scan && $(GO) test -run '^$$' -bench . -benchmem .
	./benchmarks/loadgen/run.sh
	./benchmarks/loadgen/users.sh

clean:
	rm -rf bin build demo-report.html demo-users.json demo-cost.json demo-report.png
