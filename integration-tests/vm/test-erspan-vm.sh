#!/usr/bin/env bash
# test-erspan-vm.sh - real ERSPAN v2 for telegen-sonic, in a VM.
#
# This machine's kernel has no ip_gre, so the test boots Debian's 6.1 cloud
# kernel (SONiC 202311+'s kernel line) under qemu TCG with run-erspan-vm.sh
# and runs, statically linked (x86_64-unknown-linux-musl), telegen-probe and
# the test driver telegen-erspan-vm (integration-tests/src/bin/) in it:
# a "switch" namespace mirrors its port into an ERSPAN v2 tunnel (tc matchall
# + mirred) towards a "collector" namespace where telegen-probe runs in
# erspan mode and creates erspan0 over rtnetlink; the driver starts a job,
# sends known IPv4/UDP, IPv6, ICMPv6 and ARP frames on the switch port and
# checks the per-class counts, then that stop removed the netdev.
#
# Usage: test-erspan-vm.sh [--no-build]
#   Builds as the calling user (cargo, rustup target add when missing), then
#   runs the VM as root (sudo when not root). Exit 0 only on PASS.
#   ERSPANVM_* settings pass through to run-erspan-vm.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=x86_64-unknown-linux-musl
bins="$repo/target/$target/debug"
CARGO=${CARGO:-cargo}
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[test-erspan-vm] %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
if [ "${1:-}" != --no-build ]; then
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    log "rustup target add $target"
    rustup target add "$target"
  fi
  # ring (a dependency of the test driver's TLS stack) compiles C: musl-gcc
  # when installed, else the host's C compiler (its code is freestanding).
  cc=$(command -v musl-gcc || command -v gcc || command -v cc || command -v clang || true)
  [ -n "$cc" ] || { log "no C compiler (apt-get install gcc)"; exit 2; }
  log "cargo build --target $target (telegen-probe, telegen-erspan-vm)"
  (cd "$repo" && CC_x86_64_unknown_linux_musl="$cc" "$CARGO" build --target "$target" \
     -p telegen-probe -p telegen-integration-tests --bin telegen-probe --bin telegen-erspan-vm)
fi
t1=$(now)

stage=$(mktemp -d /tmp/telegen-erspanvm-extra.XXXXXX)
trap 'rm -rf "$stage"' EXIT
for b in telegen-probe telegen-erspan-vm; do
  [ -x "$bins/$b" ] || { log "$bins/$b is not built"; exit 2; }
  # Debug info would make the (uncompressed, in-RAM) initramfs ~250 MB.
  if command -v strip >/dev/null 2>&1; then strip -o "$stage/$b" "$bins/$b"
  else cp "$bins/$b" "$stage/$b"; fi
done
chmod 0755 "$stage" "$stage"/*
log "guest binaries: $(du -sh "$stage" | cut -f1) (stripped)"

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  log "not root: running the VM under sudo"
  sudo=(sudo -E)
fi
status=0
"${sudo[@]}" "$here/run-erspan-vm.sh" --no-default-test --extra-dir "$stage" \
  --cmd './telegen-erspan-vm' || status=$?
log "timings: build $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s, VM test $(since "$t1")s, total $(since "$t0")s"
if [ "$status" = 0 ]; then log "PASS"; else log "FAIL (status $status)"; fi
exit "$status"
