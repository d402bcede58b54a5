#!/usr/bin/env bash
# Builds the probe of commit 87dec67 (counter layout 1, the last before
# counters v2) into target/layout1-probe/, for the upgrade test
# (integration-tests/tests/upgrade.rs): a real older probe writes the pins
# the current one must upgrade. Its own target directory, so that its
# telegen-probe never replaces the current one. Built once; kept.
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
src="$out/src"
rm -rf "$src"
mkdir -p "$src"
git -C "$root" archive "$COMMIT" | tar -x -C "$src"
echo "building the layout-1 probe of ${COMMIT:0:7} for the upgrade test..."
(cd "$src" && cargo build --quiet -p telegen-probe --target-dir "$out")
echo "$COMMIT" > "$out/commit"
