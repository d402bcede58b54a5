# telegen-sonic. `make run` runs a demo, `make test` tests it; both install
# what is missing first (scripts/install-deps.sh).

CARGO ?= cargo
# cargo from rustup may be missing from a non-login PATH (CI, sudo).
export PATH := $(HOME)/.cargo/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help deps build run test test-vm test-compose fmt lint docker bench clean

help:
	@echo "make run    build (release) and run the probe on a demo veth pair (as root; placeholder mode otherwise)"
	@echo "make test   build and run every test (needs root: network namespaces and BPF), test-vm included"
	@echo "make test-vm  the kernel matrix: real ERSPAN v2 in qemu VMs on Debian 5.10, 6.1, 6.12 (KERNELS=\"5.10 6.12\" picks)"
	@echo "make build  cargo build --workspace --release"
	@echo "make fmt    cargo fmt --all"
	@echo "make lint   rustfmt check, clippy -D warnings, no import cycles, and cargo deny check (when cargo-deny is installed)"
	@echo "make docker build the container images (static musl, FROM scratch) with docker or podman"
	@echo "make test-compose  bring docker-compose.yml up with podman-compose, run the curl flow, tear down (as root)"
	@echo "make bench  per-packet cost and throughput figures (target/release/telegen-bench, as root)"
	@echo "make deps   install the missing build/test dependencies (apt, pip, rustup)"
	@echo "make clean  cargo clean"

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --release

# PORT=<ifname> runs on an existing port instead of the demo veth pair.
run: build
	@scripts/run.sh

# The tests create network namespaces and load BPF programs, so the test
# binaries run as root. As a user with sudo, cargo builds as that user and only
# the test binaries run under sudo (a cargo target runner), so target/ stays
# the user's.
test: deps
	scripts/build-layout1-probe.sh
	$(CARGO) build --workspace
	@set -e; \
	if [ "$$(id -u)" -ne 0 ]; then \
		if ! command -v sudo >/dev/null 2>&1; then \
			echo "make test: the tests need root (they create network namespaces and load BPF programs)." >&2; \
			echo "make test: run it as root: su -c 'make test'" >&2; \
			exit 1; \
		fi; \
		sudo -n true 2>/dev/null || sudo -v || { echo "make test: sudo failed; run make test as root" >&2; exit 1; }; \
		echo "make test: not root: the test binaries run under sudo"; \
		triple=$$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z.-' 'A-Z__'); \
		export "CARGO_TARGET_$${triple}_RUNNER=sudo -E env PATH=$$PATH"; \
	fi; \
	export TELEGEN_BIN_DIR="$(CURDIR)/target/debug"; \
	rc=0; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		echo "+ cargo nextest run --workspace --no-fail-fast"; \
		$(CARGO) nextest run --workspace --no-fail-fast || rc=$$?; \
	else \
		echo "+ cargo test --workspace --no-fail-fast (cargo-nextest not installed)"; \
		$(CARGO) test --workspace --no-fail-fast || rc=$$?; \
	fi; \
	$(MAKE) --no-print-directory test-vm || rc=1; \
	exit $$rc

# The kernel matrix: real ERSPAN v2 on Debian's 5.10, 6.1 and 6.12 kernels
# (SONiC's kernel lines and a TCX one), each booted under qemu TCG with the
# static (musl) probe and test driver inside (integration-tests/vm/): as
# root, without vmlinux BTF, forced tc on 6.12, and with only CAP_BPF,
# CAP_PERFMON and CAP_NET_ADMIN on 5.10 and 6.1. KERNELS="5.10 6.12" picks
# some. Builds once as the user, runs the VMs as root (sudo); prints a
# kernel -> variant -> PASS/FAIL -> seconds table.
KERNELS ?= 5.10 6.1 6.12
export KERNELS
test-vm:
	@integration-tests/vm/test-erspan-vm.sh

fmt:
	$(CARGO) fmt --all

# cargo deny (deny.toml: licenses, advisories, bans, sources) runs when
# cargo-deny is installed: TELEGEN_LINT_TOOLS=1 make deps installs it (and
# cargo-audit); `make test` never compiles it.
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 scripts/check-import-cycles.py services/*/src
	@if $(CARGO) deny --version >/dev/null 2>&1; then \
		echo "+ cargo deny check licenses bans sources"; \
		$(CARGO) deny check licenses bans sources; \
		echo "+ cargo deny check advisories"; \
		out=$$($(CARGO) deny check advisories 2>&1) && rc=0 || rc=$$?; \
		echo "$$out" | tail -n 20; \
		if [ $$rc -ne 0 ]; then \
			if echo "$$out" | grep -q "failed to fetch advisory database"; then \
				echo "make lint: WARNING: the RustSec advisory database cannot be fetched here (no network): advisories not checked (CI's supply-chain job checks them)"; \
			else \
				exit $$rc; \
			fi; \
		fi; \
	else \
		echo "make lint: cargo-deny not installed, skipping 'cargo deny check' (TELEGEN_LINT_TOOLS=1 make deps installs it)"; \
	fi

# Images: IMAGE_PREFIX (localhost/telegen-sonic/), IMAGE_TAG (latest),
# BINARIES=prebuilt (host musl build, nothing pulled) or build (in the
# Dockerfile's rust stage). Labels carry the version --version prints.
docker: deps
	@scripts/docker-build.sh

# docker-compose.yml for real, with podman-compose (as root): see
# scripts/test-compose.sh. The images are built with podman (vfs storage)
# even where a docker daemon runs, so that podman-compose finds them.
test-compose: deps
	@CONTAINER_ENGINE="podman --storage-driver $${PODMAN_STORAGE_DRIVER:-vfs}" scripts/docker-build.sh
	@scripts/test-compose.sh

bench: deps
	$(CARGO) build --release --workspace
	@set -e; \
	bin="$(CURDIR)/target/release/telegen-bench"; \
	if [ ! -x "$$bin" ]; then \
		echo "make bench: $$bin was not built (integration-tests/src/bin/telegen-bench/)" >&2; \
		exit 1; \
	fi; \
	export TELEGEN_BIN_DIR="$(CURDIR)/target/release"; \
	if [ "$$(id -u)" -eq 0 ]; then \
		"$$bin" $(BENCH_ARGS); \
	elif command -v sudo >/dev/null 2>&1; then \
		echo "make bench: not root: running under sudo"; \
		sudo -E env "PATH=$$PATH" "$$bin" $(BENCH_ARGS); \
	else \
		echo "make bench: needs root (it loads BPF programs and creates network namespaces)" >&2; \
		exit 1; \
	fi

clean:
	$(CARGO) clean
