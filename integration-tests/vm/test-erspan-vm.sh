#!/usr/bin/env bash
# test-erspan-vm.sh - the kernel matrix: real ERSPAN v2 for telegen-sonic on
# each of SONiC's kernel lines, in VMs.
#
# This machine's kernel may have no ip_gre and is not a switch's kernel, so
# each kernel of the matrix (Debian's cloud kernels: 5.10 from bullseye, the
# kernel line of SONiC 202205-202305; 6.1 from bookworm, SONiC 202311+; 6.12
# from trixie) boots under qemu TCG with run-erspan-vm.sh and runs,
# statically linked (x86_64-unknown-linux-musl), telegen-probe and the test
# driver telegen-erspan-vm (integration-tests/src/bin/) in it: a "switch"
# namespace mirrors its port into an ERSPAN v2 tunnel (tc matchall + mirred)
# towards a "collector" namespace where telegen-probe runs in erspan mode
# and creates erspan0 over rtnetlink; the driver starts jobs (one filtered,
# with flows), sends known IPv4/UDP, IPv6, ICMPv6 and ARP frames on the
# switch port and checks the per-class counts, across a probe crash.
#
# The driver repeats that per variant, chosen by the guest kernel: as root
# (TCX expected from 6.6, tc below), forced tc on 6.6+, without vmlinux BTF,
# and on 5.10 and 6.1 as a non-root user with only CAP_BPF, CAP_PERFMON and
# CAP_NET_ADMIN (plus, on 5.10, a hard RLIMIT_MEMLOCK too low to load).
#
# Usage: test-erspan-vm.sh [--no-build]
#   KERNELS="5.10 6.1 6.12" (default) picks kernels; VARIANT=name runs one
#   variant only. Builds once as the calling user (cargo, rustup target add
#   when missing), then runs each VM as root (sudo when not root), each
#   kernel with its own cached work directory under
#   ${ERSPANVM_WORK_BASE:-/tmp/telegen-erspanvm}. Prints a table kernel ->
#   variant -> PASS/FAIL -> seconds; exit 0 only when every kernel passed.
#   Other ERSPANVM_* settings pass through to run-erspan-vm.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=x86_64-unknown-linux-musl
bins="$repo/target/$target/debug"
CARGO=${CARGO:-cargo}
export PATH="$HOME/.cargo/bin:$PATH"
KERNELS=${KERNELS:-"5.10 6.1 6.12"}
BASE=${ERSPANVM_WORK_BASE:-/tmp/telegen-erspanvm}

log() { printf '[test-erspan-vm] %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The Debian suite that ships each kernel line (its linux-image-cloud-amd64).
suite_of() {
  case "$1" in
    5.10) echo bullseye ;;
    6.1) echo bookworm ;;
    6.12) echo trixie ;;
    *) return 1 ;;
  esac
}
for k in $KERNELS; do
  suite_of "$k" >/dev/null || { log "unknown kernel $k (known: 5.10 6.1 6.12)"; exit 2; }
done

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
build=$(since "$t0")

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
  log "not root: running the VMs under sudo"
  sudo=(sudo -E)
fi
mkdir -p "$BASE"
status=0
rows=()
for k in $KERNELS; do
  suite=$(suite_of "$k")
  work="$BASE/$k"
  tk=$(now)
  log "=== kernel $k (Debian $suite) ==="
  rc=0
  "${sudo[@]}" env ERSPANVM_WORK="$work" ERSPANVM_SUITE="$suite" \
    ERSPANVM_QEMU_ROOT="$BASE/qemu-root" \
    "$here/run-erspan-vm.sh" --no-default-test --extra-dir "$stage" \
    --timeout "${ERSPANVM_TIMEOUT:-1200}" \
    --cmd "./telegen-erspan-vm ${VARIANT:-}" || rc=$?
  secs=$(since "$tk")
  kver=$(sed -n 's/^erspan-vm: guest kernel //p' "$work/console.log" 2>/dev/null | tr -d '\r' | head -n 1)
  # One row per variant the guest reported; a kernel that reported none
  # (did not boot, setup error) gets one FAIL row.
  mapfile -t results < <(tr -d '\r' < "$work/console.log" 2>/dev/null |
                         sed -n 's/^VARIANT-RESULT: //p')
  if [ ${#results[@]} = 0 ]; then
    rows+=("$k ${kver:-?} (none) FAIL $secs")
  fi
  for r in "${results[@]}"; do
    rows+=("$k ${kver:-?} $r")
  done
  if [ "$rc" = 0 ]; then log "kernel $k: PASS (${secs}s)"; else log "kernel $k: FAIL (status $rc, ${secs}s; $work/console.log)"; status=1; fi
done

echo
echo "kernel matrix (make test-vm; build ${build}s, total $(since "$t0")s):"
printf '  %-6s %-28s %-12s %-5s %s\n' kernel release variant result seconds
for r in "${rows[@]}"; do
  # shellcheck disable=SC2086 # fields are single words
  printf '  %-6s %-28s %-12s %-5s %s\n' $r
done
if [ "$status" = 0 ]; then log "PASS"; else log "FAIL"; fi
exit "$status"
