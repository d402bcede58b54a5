#!/usr/bin/env bash
# `make docker`: builds the four images (telegen-probe, telegen-gateway,
# telegen-exporter, telegenctl) from deploy/docker/Dockerfile with docker
# (when a daemon answers) or podman, tagged IMAGE_PREFIX<name>:IMAGE_TAG.
#
# BINARIES=prebuilt (default here): static musl binaries are built on this
# host (cargo build --target <arch>-unknown-linux-musl) and copied into
# FROM scratch images; no base image is pulled at all.
# BINARIES=build: everything is compiled inside the Dockerfile's build stage
# (pulls RUST_IMAGE; what CI's buildx job does for amd64 and arm64).
#
# Labels and the embedded version come from the same values:
# TELEGEN_VERSION (release/mark-vX-Y-Z on a vX.Y.Z tag, else dev),
# TELEGEN_COMMIT (short), TELEGEN_BUILD_DATE (UTC).
# With podman, the NOTES recipe: --storage-driver vfs (PODMAN_STORAGE_DRIVER).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'docker: %s\n' "$*"; }
die() {
	printf 'docker: ERROR: %s\n' "$*" >&2
	exit 1
}

BINARIES=${BINARIES:-prebuilt}
IMAGE_PREFIX=${IMAGE_PREFIX:-localhost/telegen-sonic/}
IMAGE_TAG=${IMAGE_TAG:-latest}
SOURCE_URL=${SOURCE_URL:-https://github.com/telegen-sonic/telegen-sonic}
TARGETS=${TARGETS:-probe gateway exporter cli}

# --- engine -----------------------------------------------------------------
engine=()
if [[ -n ${CONTAINER_ENGINE:-} ]]; then
	read -r -a engine <<<"$CONTAINER_ENGINE"
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	engine=(docker)
else
	engine=(podman --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}")
fi
if [[ ${engine[0]} == podman ]] && ! command -v podman >/dev/null 2>&1; then
	say "no podman (and no docker daemon): installing podman and runc (apt-get)"
	command -v apt-get >/dev/null 2>&1 || die "install podman or docker"
	[[ $(id -u) -eq 0 ]] || die "not root: apt-get install podman runc, then make docker"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc
fi
say "engine: ${engine[*]}"

# --- version: the same values build.rs would embed --------------------------
release_name() { # vX.Y.Z -> release/mark-vX-Y-Z
	[[ $1 =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || return 1
	echo "release/mark-v${BASH_REMATCH[1]}-${BASH_REMATCH[2]}-${BASH_REMATCH[3]}"
}
if [[ -z ${TELEGEN_VERSION:-} ]]; then
	tag=$(git describe --tags --exact-match HEAD 2>/dev/null || true)
	TELEGEN_VERSION=$(release_name "$tag" || echo dev)
fi
TELEGEN_COMMIT=${TELEGEN_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
TELEGEN_BUILD_DATE=${TELEGEN_BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
export TELEGEN_VERSION TELEGEN_COMMIT TELEGEN_BUILD_DATE
say "version $TELEGEN_VERSION, commit $TELEGEN_COMMIT, built $TELEGEN_BUILD_DATE"

case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) die "unsupported machine $(uname -m)" ;;
esac
triple="$(uname -m)-unknown-linux-musl"

# --- binaries ------------------------------------------------------------------
if [[ $BINARIES == prebuilt ]]; then
	# ring (rustls) compiles C for the musl target: musl-gcc from musl-tools.
	if ! command -v musl-gcc >/dev/null 2>&1; then
		say "installing musl-tools (musl-gcc, for ring's C code)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools
	fi
	cc_var="CC_${triple//-/_}"
	if [[ -z ${!cc_var:-} ]] && ! command -v "$(uname -m)-linux-musl-gcc" >/dev/null 2>&1; then
		export "$cc_var=musl-gcc"
	fi
	if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
		say "rustup target add $triple"
		rustup target add "$triple"
	fi
	say "cargo build --release --target $triple"
	cargo build --release --locked --target "$triple" \
		-p telegen-probe -p telegen-gateway -p telegen-exporter -p telegen-cli
	stage="target/docker/$arch"
	rm -rf "$stage"
	mkdir -p "$stage"
	for b in telegen-probe telegen-gateway telegen-exporter telegenctl; do
		cp "target/$triple/release/$b" "$stage/"
	done
	ca=/etc/ssl/certs/ca-certificates.crt
	[[ -r $ca ]] || die "$ca is missing (apt-get install ca-certificates)"
	cp "$ca" "$stage/"
	"$stage/telegen-probe" --version
fi

# --- images --------------------------------------------------------------------
for t in $TARGETS; do
	case $t in
	cli) name=telegenctl ;;
	*) name=telegen-$t ;;
	esac
	image="${IMAGE_PREFIX}${name}:${IMAGE_TAG}"
	say "building $image (target $t)"
	# sonic-package-manager reads the package manifest from this label.
	# The OCI labels also on the command line: the Dockerfile's LABEL lines
	# see the build args, but buildah's layer cache does not key on them, so a
	# cached base stage would keep an older commit's labels.
	labels=(
		--label "org.opencontainers.image.version=$TELEGEN_VERSION"
		--label "org.opencontainers.image.revision=$TELEGEN_COMMIT"
		--label "org.opencontainers.image.created=$TELEGEN_BUILD_DATE"
		--label "org.opencontainers.image.source=$SOURCE_URL"
	)
	manifest=deploy/sonic/$name/manifest.json
	if [[ -r $manifest ]]; then
		labels+=(--label "com.azure.sonic.manifest=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")))' "$manifest")")
	fi
	"${engine[@]}" build -q -f deploy/docker/Dockerfile --target "$t" "${labels[@]}" \
		--build-arg BINARIES="$BINARIES" \
		--build-arg TARGETARCH="$arch" \
		--build-arg TELEGEN_VERSION="$TELEGEN_VERSION" \
		--build-arg TELEGEN_COMMIT="$TELEGEN_COMMIT" \
		--build-arg TELEGEN_BUILD_DATE="$TELEGEN_BUILD_DATE" \
		--build-arg SOURCE_URL="$SOURCE_URL" \
		-t "$image" . >/dev/null
done

say "images:"
for t in $TARGETS; do
	case $t in
	cli) name=telegenctl ;;
	*) name=telegen-$t ;;
	esac
	"${engine[@]}" image inspect --format "{{.Size}}" "${IMAGE_PREFIX}${name}:${IMAGE_TAG}" |
		awk -v n="${IMAGE_PREFIX}${name}:${IMAGE_TAG}" '{printf "  %-50s %6.1f MB\n", n, $1/1e6}'
done
