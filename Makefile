# The two commands of the README: `make run` and `make test`. Each installs what is missing.
CONFIG ?= config.example.json
SWIFT_BUILD_FLAGS ?=
.PHONY: deps build run test bench bench-smoke check-config format clean version dist image-test

deps:
	@bash scripts/install-deps.sh

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

run: deps
	swift build $(SWIFT_BUILD_FLAGS) --product webhook-bridge
	swift run $(SWIFT_BUILD_FLAGS) --skip-build webhook-bridge serve --config $(CONFIG)

test: deps
	bash scripts/install-test-tools.sh
	swift build $(SWIFT_BUILD_FLAGS) --build-tests
	swift test $(SWIFT_BUILD_FLAGS) --skip-build --disable-xctest # every test is Swift Testing

# Side by side with nginx and a Python receiver (bench/bench.py); results in .build-bench/run.
bench:
	bash bench/run.sh

# One-second runs that check the benchmark works (CI); no timings are judged.
bench-smoke:
	bash bench/run.sh --smoke

# With the binary `make run` builds (seconds once built). The package plugin
# (`swift package check-webhook-config`) runs the same binary, after compiling itself.
check-config: deps
	swift build $(SWIFT_BUILD_FLAGS) --product webhook-bridge
	swift run $(SWIFT_BUILD_FLAGS) --skip-build webhook-bridge check-config $(CONFIG)

# The version, from Sources/WebhookBridge/ProcessMetrics.swift (also in /metrics).
version:
	@sh scripts/version.sh

# dist/webhook-bridge-VERSION-linux-ARCH.tar.gz: the release binary, example configs, deploy/, README.
dist: deps
	bash scripts/dist.sh

# Builds the container image (Containerfile) with podman around a host-built binary and checks
# it serves; needs root, apt and deb.debian.org (see the script's header).
image-test:
	bash scripts/image-test.sh

format:
	swift format --in-place --recursive --parallel Package.swift Sources Tests Plugins

clean:
	rm -rf .build dist prebuilt
