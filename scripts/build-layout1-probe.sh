#!/usr/bin/env bash
# Builds the probe of commit 87dec67 (counter layout 1, the last before
# counters v2) into target/layout1-probe/debug/telegen-probe, for the upgrade
# test (integration-tests/tests/upgrade.rs): a real older probe writes the
# pins the current one must upgrade. Its own target directory, so that its
# telegen-probe never replaces the current one. Built once; only the binary
# is kept: its build tree (sources, dependencies) is ~1.4 GB with debug info,
# and CI machines may have a few GB of disk.
set -euo pipefail
COMMIT=87dec673b31582e404a694693e42d08bc826c2c4
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/target/layout1-probe"
bin="$out/debug/telegen-probe"
if [ -x "$bin" ] && [ "$(cat "$out/commit" 2>/dev/null)" = "$COMMIT" ]; then
	exit 0
fi
if ! git -C "$root" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
	# A shallow clone: fetch the one commit.
	git -C "$root" fetch --quiet --depth=1 origin "$COMMIT"
fi
mkdir -p "$root/target"
build=$(mktemp -d "$root/target/layout1-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
mkdir -p "$build/src"
git -C "$root" archive "$COMMIT" | tar -x -C "$build/src"
echo "building the layout-1 probe of ${COMMIT:0:7} for the upgrade test..."
# No debug info and no incremental state: the binary is all that is kept.
(cd "$build/src" && CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=false \
	cargo build --quiet -p telegen-probe --target-dir "$build/target")
rm -rf "$out"
mkdir -p "$out/debug"
mv "$build/target/debug/telegen-probe" "$bin"
echo "$COMMIT" > "$out/commit"
