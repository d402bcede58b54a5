#!/usr/bin/env bash
# run-erspan-vm.sh - run a real ERSPAN v2 tunnel test inside a small QEMU VM.
#
# Why: the host kernel may lack GRE/ERSPAN (`ip link add type erspan` ->
# "Unknown device type"). Debian bookworm's 6.1 kernel (the kernel of SONiC
# 202311+) has ip_gre/ERSPAN as modules, so we boot it under QEMU (TCG, no KVM
# needed) with a tiny busybox initramfs and run the test there.
#
# What it does (Debian bookworm x86_64 host, as root, apt reachable):
#   1. apt-get installs the missing host tools (qemu-system-x86, cpio, kmod,
#      iproute2, ...). If installing qemu-system-x86 would remove a package
#      (a backports qemu-utils does that), qemu is unpacked under $WORK
#      instead. The guest kernel and busybox-static are fetched with
#      `apt-get download` and unpacked with `dpkg-deb -x`, never installed.
#   2. Builds an initramfs: busybox-static, the host's real iproute2 `ip`/`tc`
#      and dash (+ their shared libraries; busybox's ip/tc know no erspan), the
#      needed modules (decompressed), an /init, the built-in test, and
#      optional extra files.
#   3. Boots it with qemu-system-x86_64 -accel tcg -nographic (serial console),
#      the guest powers off when done; exit 0 only if the guest printed
#      "ERSPAN-VM-RESULT: PASS" (1 on FAIL/timeout, 2 on a setup error). The
#      whole VM run is bounded by a timeout.
#
# telegen-sonic's copy of the recipe in ../shared/reference/erspan-vm/ (same
# behaviour; its own work directory). test-erspan-vm.sh beside it builds the
# static probe and test driver and runs them in the guest with --extra-dir/--cmd.
#
# Usage: run-erspan-vm.sh [--extra-dir DIR] [--cmd 'CMD'] [--no-default-test]
#                         [--modules 'm1 m2'] [--timeout SECONDS] [--help]
# See README.md beside this file.
set -euo pipefail
shopt -s inherit_errexit   # keep `set -e` inside $(...) too

# ---------------------------------------------------------------- settings ---
WORK="${ERSPANVM_WORK:-/tmp/telegen-erspanvm}"          # all build artefacts live here
FLAVOUR="${ERSPANVM_FLAVOUR:-cloud-amd64}"           # kernel flavour: cloud-amd64 | amd64
KERNEL_PKG="${ERSPANVM_KERNEL_PKG:-}"                # pin, e.g. linux-image-6.1.0-56-cloud-amd64
# Debian suite the guest kernel comes from (bullseye: 5.10, bookworm: 6.1,
# trixie: 6.12). Set: a private apt configuration under $WORK/apt (the
# archive URI read from the system's sources) resolves and fetches the
# kernel, leaving the system's sources untouched. Empty: the system's apt.
SUITE="${ERSPANVM_SUITE:-}"
QEMU_ROOT="${ERSPANVM_QEMU_ROOT:-}"                  # where an unpacked qemu lives (default $WORK/qemu-root)
TIMEOUT="${ERSPANVM_TIMEOUT:-300}"                   # seconds for the VM run
MEM_MB="${ERSPANVM_MEM:-1024}"
SMP="${ERSPANVM_SMP:-1}"
ACCEL="${ERSPANVM_ACCEL:-tcg}"                       # tcg works anywhere; kvm where usable
CPU="${ERSPANVM_CPU:-max}"
QEMU_MODE="${ERSPANVM_QEMU:-auto}"                   # auto | unpack (never apt-install qemu)
FB_TUNNELS="${ERSPANVM_FB_TUNNELS:-2}"               # net.core.fb_tunnels_only_for_init_net
# Modules loaded at boot (their dependencies are added automatically).
MODULES="ip_gre ip6_gre veth dummy sch_ingress cls_u32 cls_bpf cls_matchall cls_flower \
act_gact act_mirred act_bpf"
EXTRA_MODULES="${ERSPANVM_EXTRA_MODULES:-}"
EXTRA_DIR=""
GUEST_CMD=""
DEFAULT_TEST=1

RESULT_MARKER="ERSPAN-VM-RESULT:"
QEMU_PID=""
TAIL_PID=""
QEMU=""          # qemu-system-x86_64 to run
QEMU_OPTS=()     # extra options for an unpacked qemu (firmware dirs)
QEMU_ENV=()      # and its environment (libraries, modules)

# ----------------------------------------------------------------- helpers ---
log() { printf '[erspan-vm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
  cat <<'EOF'
Options:
  --extra-dir DIR     copy DIR's contents into the guest at /extra (first in PATH)
  --cmd 'CMD'         shell command run in the guest (sh -e, cwd /extra) after the
                      built-in test; its exit status decides PASS/FAIL too
  --no-default-test   skip the built-in ERSPAN v2 test
  --modules 'M ...'   extra kernel modules to load in the guest
  --timeout SECONDS   bound for the VM run (default 300)
Environment: ERSPANVM_WORK, ERSPANVM_FLAVOUR, ERSPANVM_KERNEL_PKG, ERSPANVM_SUITE,
  ERSPANVM_QEMU_ROOT, ERSPANVM_TIMEOUT,
  ERSPANVM_MEM, ERSPANVM_SMP, ERSPANVM_ACCEL, ERSPANVM_CPU, ERSPANVM_FB_TUNNELS,
  ERSPANVM_EXTRA_MODULES, ERSPANVM_QEMU (auto | unpack)
EOF
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --extra-dir) [ $# -ge 2 ] || die "--extra-dir needs a directory"
                   EXTRA_DIR="$2"; shift 2 ;;
      --cmd)       [ $# -ge 2 ] || die "--cmd needs a command"
                   GUEST_CMD="$2"; shift 2 ;;
      --no-default-test) DEFAULT_TEST=0; shift ;;
      --modules)   [ $# -ge 2 ] || die "--modules needs a list"
                   EXTRA_MODULES="$EXTRA_MODULES $2"; shift 2 ;;
      --timeout)   [ $# -ge 2 ] || die "--timeout needs seconds"
                   TIMEOUT="$2"; shift 2 ;;
      -h|--help)   usage; exit 0 ;;
      *)           usage >&2; die "unknown argument: $1" ;;
    esac
  done
  [ -z "$EXTRA_DIR" ] || [ -d "$EXTRA_DIR" ] || die "--extra-dir $EXTRA_DIR is not a directory"
  case "$TIMEOUT" in ''|*[!0-9]*) die "--timeout must be a number of seconds" ;; esac
  if [ "$DEFAULT_TEST" = 0 ] && [ -z "$GUEST_CMD" ]; then
    die "--no-default-test needs --cmd (otherwise nothing would be tested)"
  fi
}

# Kill what we started (the VM and the log follower) on any exit.
cleanup() {
  local pid
  for pid in "$QEMU_PID" "$TAIL_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}

# ------------------------------------------------------- host preparation ---
APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
}

# Install only the host tools that are missing (qemu: see ensure_qemu).
install_host_tools() {
  local want=() cmd pkg
  while read -r cmd pkg; do
    command -v "$cmd" >/dev/null 2>&1 || [[ " ${want[*]} " == *" $pkg "* ]] ||
      want+=("$pkg")
  done <<'EOF'
cpio cpio
depmod kmod
ip iproute2
tc iproute2
ldd libc-bin
dash dash
xz xz-utils
zstd zstd
timeout coreutils
flock util-linux
dpkg-deb dpkg
EOF
  if [ ${#want[@]} -gt 0 ]; then
    apt_update_once
    log "apt-get install ${want[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${want[@]}" >/dev/null
  fi
}

# The Debian archive URI the system's apt uses (deb822 sources first, then
# the one-line format), for the private kernel sources.
archive_uri() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # The first stanza that is not the security archive.
    uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
      !/debian-security/ { for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) {
        sub(/^URIs:[ \t]*/, "", $i); split($i, u, " "); print u[1]; exit } }' "$f")
    [ -z "$uri" ] || break
  done
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
          awk '$1 == "deb" && !/security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }')
  fi
  [ -n "$uri" ] && echo "$uri"
}

# kernel_apt CMD ARGS...: apt-get/apt-cache for the guest kernel. With
# SUITE set, through a private configuration under $WORK/apt (its own
# sources list, lists and cache; the system's stay untouched).
KAPT_UPDATED=0
kernel_apt() {
  if [ -z "$SUITE" ]; then "$@"; return; fi
  local dir="$WORK/apt" uri
  if [ ! -f "$dir/apt.conf" ]; then
    uri=$(archive_uri) || die "cannot read the Debian archive URI from /etc/apt/sources*"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $SUITE main" \
      > "$dir/sources.list"
    cat > "$dir/apt.conf" <<EOF
Dir::Etc::sourcelist "$dir/sources.list";
Dir::Etc::sourceparts "/dev/null";
Dir::State::lists "$dir/lists/";
Dir::Cache "$dir/cache/";
APT::Sandbox::User "root";
EOF
  fi
  APT_CONFIG="$dir/apt.conf" "$@"
}

kernel_apt_update() {
  if [ -z "$SUITE" ]; then apt_update_once; return; fi
  if [ "$KAPT_UPDATED" = 0 ]; then
    log "apt-get update ($SUITE, private lists under $WORK/apt)"
    kernel_apt apt-get update -qq || die "apt-get update for $SUITE failed"
    KAPT_UPDATED=1
  fi
}

# Name of the versioned kernel package behind linux-image-$FLAVOUR
# (fails when the apt lists do not know it).
resolve_kernel_pkg() {
  if [ -n "$KERNEL_PKG" ]; then echo "$KERNEL_PKG"; return 0; fi
  local pkg
  pkg=$(kernel_apt apt-cache depends "linux-image-$FLAVOUR" 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true)
  [ -n "$pkg" ] && echo "$pkg"
}

# cached_deb PKG -> path of a complete cached .deb of PKG, or fail.
cached_deb() {
  local deb
  # shellcheck disable=SC2012 # Debian package file names: newest first
  deb=$(ls -t "$WORK/debs/${1%%:*}"_*.deb 2>/dev/null | head -n 1 || true)
  [ -n "$deb" ] || return 1
  if ! dpkg-deb --info "$deb" >/dev/null 2>&1; then
    rm -f "$deb"; return 1   # a download cut short
  fi
  echo "$deb"
}

# download_debs PKG... -> paths of their .debs, fetched with `apt-get download`
# into $WORK/debs (cached: a re-run needs no network). Fails, without dying,
# when apt cannot get them (no or stale apt lists). APT_RUN (e.g.
# kernel_apt) wraps the apt-get call.
APT_RUN=""
download_debs() {
  local pkg missing=()
  mkdir -p "$WORK/debs" || return 1
  chmod 0777 "$WORK/debs"   # apt's _apt sandbox user writes there
  for pkg in "$@"; do cached_deb "$pkg" >/dev/null || missing+=("${pkg%%:*}"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get download ${missing[*]}"
    (cd "$WORK/debs" && $APT_RUN apt-get download -qq "${missing[@]}" >/dev/null 2>&1) || return 1
  fi
  for pkg in "$@"; do cached_deb "$pkg" || return 1; done
}

# fetch_debs PKG...: download_debs, after `apt-get update` if it must.
fetch_debs() {
  local debs
  if ! debs=$(download_debs "$@"); then
    apt_update_once >&2
    debs=$(download_debs "$@") || die "apt-get download $* failed"
  fi
  echo "$debs"
}

# unpack_debs DEST DEB...: unpack the .debs into DEST with `dpkg-deb -x`
# (nothing is installed). Skipped when DEST already holds exactly these.
unpack_debs() {
  local dest="$1" tmp deb list
  shift
  list=$(printf '%s\n' "$@" | xargs -n 1 basename)
  if [ -f "$dest/.unpacked" ] && [ "$(cat "$dest/.unpacked")" = "$list" ]; then
    return 0
  fi
  if [ $# = 1 ]; then log "unpacking $list"; else log "unpacking $# packages into $dest"; fi
  tmp="$dest.tmp.$$"
  rm -rf "$dest" "$dest".tmp.*
  mkdir -p "$tmp"
  for deb in "$@"; do dpkg-deb -x "$deb" "$tmp"; done
  echo "$list" > "$tmp/.unpacked"
  mv "$tmp" "$dest"
}

# ensure_qemu: sets QEMU. Installs qemu-system-x86 (--no-install-recommends)
# unless that would remove something: a qemu-utils from bookworm-backports
# (10.x) Breaks bookworm's qemu-system-common 7.2, and apt would remove it.
# Then (or with ERSPANVM_QEMU=unpack) qemu and the packages it lacks are
# unpacked under $WORK and run from there, leaving the host as it was.
ensure_qemu() {
  local sim removes pkgs root="${QEMU_ROOT:-$WORK/qemu-root}" list debs
  QEMU=$(command -v qemu-system-x86_64 || true)
  if [ -n "$QEMU" ] && [ "$QEMU_MODE" != unpack ]; then return 0; fi
  if ! (set_unpacked_qemu "$root" && unpacked_qemu_ok); then  # none cached yet
    apt_update_once
    sim=$(apt-get install -s --no-install-recommends qemu-system-x86 2>&1) ||
      die "apt-get cannot install qemu-system-x86: $sim"
    removes=$(echo "$sim" | awk '/^Remv /{ print $2 }' | xargs)
    if [ "$QEMU_MODE" != unpack ] && [ -z "$removes" ]; then
      log "apt-get install qemu-system-x86"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 >/dev/null
      QEMU=$(command -v qemu-system-x86_64)
      return 0
    fi
    [ -z "$removes" ] || log "installing qemu-system-x86 would remove: $removes"
    log "so unpacking qemu under $root instead of installing it"
    # qemu's own packages (its TCG accelerator is a module in -common) plus
    # whatever else the host lacks.
    pkgs=$( { echo qemu-system-x86 qemu-system-common qemu-system-data seabios
              echo "$sim" | awk '/^Inst /{ print $2 }'; } | xargs -n 1 | sort -u)
    # shellcheck disable=SC2086 # one word per package
    list=$(fetch_debs $pkgs)
    mapfile -t debs <<<"$list"
    unpack_debs "$root" "${debs[@]}"
  fi
  set_unpacked_qemu "$root"
  unpacked_qemu_ok || die "the qemu unpacked under $root misses libraries"
  log "qemu: $QEMU (unpacked, not installed)"
}

set_unpacked_qemu() { # ROOT: run qemu from an unpacked tree
  local root="$1"
  QEMU="$root/usr/bin/qemu-system-x86_64"
  QEMU_OPTS=(-L "$root/usr/share/qemu" -L "$root/usr/share/seabios")
  QEMU_ENV=("QEMU_MODULE_DIR=$root/usr/lib/x86_64-linux-gnu/qemu"   # accel-tcg is a module
            "LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu")
}

unpacked_qemu_ok() { # are the unpacked qemu and its TCG module complete?
  local f out
  for f in "$QEMU" "${QEMU_ENV[0]#*=}/accel-tcg-x86_64.so"; do
    [ -e "$f" ] || return 1
    out=$(env "${QEMU_ENV[@]}" ldd "$f" 2>&1 || true)
    case "$out" in *"not found"*) return 1 ;; esac
  done
}

# Sets KROOT (unpacked kernel package), KVER, VMLINUZ, KMODDIR.
prepare_kernel() {
  local pkg deb images APT_RUN=kernel_apt
  if ! pkg=$(resolve_kernel_pkg) || ! deb=$(download_debs "$pkg"); then
    kernel_apt_update   # no apt lists yet, or stale ones (old kernels leave the mirror)
    pkg=$(resolve_kernel_pkg) || die "cannot resolve linux-image-$FLAVOUR${SUITE:+ in $SUITE} to a package"
    deb=$(download_debs "$pkg") || die "apt-get download $pkg failed"
  fi
  KROOT="$WORK/pkgs/$(basename "$deb" .deb)"
  unpack_debs "$KROOT" "$deb"
  images=("$KROOT"/boot/vmlinuz-*)
  VMLINUZ=${images[0]}
  [ -f "$VMLINUZ" ] || die "no vmlinuz in $pkg"
  KVER=${VMLINUZ##*/vmlinuz-}
  if [ -d "$KROOT/lib/modules/$KVER" ]; then KMODDIR="$KROOT/lib/modules/$KVER"
  else KMODDIR="$KROOT/usr/lib/modules/$KVER"; fi
  [ -d "$KMODDIR" ] || die "no modules for $KVER in $pkg"
  # modules.dep is made by the package's postinst, which we never run.
  [ -s "$KMODDIR/modules.dep" ] || depmod -b "${KMODDIR%/lib/modules/*}" "$KVER"
  log "kernel: $pkg ($KVER)${SUITE:+ from $SUITE}"
}

# --------------------------------------------------------- initramfs build ---
# copy_with_libs ROOT BIN DEST: copy a dynamic binary and every library ldd
# names (plus the loader) to the same paths inside ROOT.
copy_with_libs() {
  local root="$1" bin="$2" dest="$3" lib
  install -D -m 0755 "$(readlink -f "$bin")" "$root$dest"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# add_modules ROOT: copy MODULES + EXTRA_MODULES and their dependencies,
# decompressed, and write the load order to /etc/erspanvm/modules.list.
add_modules() {
  local root="$1" base="${KMODDIR%/lib/modules/*}" list="$1/etc/erspanvm/modules.list"
  local m deps word src rel out
  : > "$list"
  for m in $MODULES $EXTRA_MODULES; do
    # --show-depends prints "insmod PATH" lines, dependencies first
    # (and "builtin NAME" for what is built in); -C /dev/null ignores the
    # host's modprobe.d (systemd's adds "numdummies=0" to dummy).
    deps=$(modprobe -C /dev/null -d "$base" -S "$KVER" --show-depends "$m" 2>&1) ||
      die "kernel module $m: $deps"
    echo "$deps" | while read -r word src _; do
      [ "$word" = insmod ] || continue
      rel=${src#"$KMODDIR"/}
      rel=${rel%.xz}; rel=${rel%.zst}; rel=${rel%.gz}
      grep -qxF "$rel" "$list" && continue
      out="$root/lib/modules/$KVER/$rel"
      mkdir -p "$(dirname "$out")"
      case "$src" in
        *.ko.xz)  xz -dc "$src" > "$out" ;;
        *.ko.zst) zstd -qdc "$src" > "$out" ;;
        *.ko.gz)  gzip -dc "$src" > "$out" ;;
        *)        cp "$src" "$out" ;;
      esac
      echo "$rel" >> "$list"
    done
  done
  cp "$KMODDIR"/modules.order "$KMODDIR"/modules.builtin* "$root/lib/modules/$KVER/"
  depmod -b "$root" "$KVER"   # so `modprobe` works inside the guest too
}

build_initramfs() {
  local root="$WORK/initramfs-root" bbroot applet deb
  deb=$(fetch_debs busybox-static)
  bbroot="$WORK/pkgs/$(basename "$deb" .deb)"
  unpack_debs "$bbroot" "$deb"
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/erspanvm,proc,sys,dev,tmp,run,root,extra}
  mkdir -p "$root"/lib/x86_64-linux-gnu "$root"/lib64
  ln -s lib "$root/usr/lib" 2>/dev/null || true

  # Real iproute2 first, then busybox applets for everything else. The shell
  # is the host's dash, not busybox ash: Debian's busybox-static prefers its
  # own applets over PATH (ash, env, timeout, xargs ... would all run the
  # busybox `ip`, which knows no erspan). coreutils env/timeout for the same
  # reason.
  copy_with_libs "$root" "$(command -v ip)" /sbin/ip
  copy_with_libs "$root" "$(command -v tc)" /sbin/tc
  copy_with_libs "$root" "$(command -v dash)" /bin/sh
  copy_with_libs "$root" "$(command -v env)" /usr/bin/env
  copy_with_libs "$root" "$(command -v timeout)" /usr/bin/timeout
  install -m 0755 "$bbroot/bin/busybox" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list-full); do
    [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done

  add_modules "$root"

  # Guest configuration, read by /init (plain words only).
  cat > "$root/etc/erspanvm/config" <<EOF
KVER=$KVER
FB_TUNNELS=$FB_TUNNELS
DEFAULT_TEST=$DEFAULT_TEST
EOF
  if [ -n "$GUEST_CMD" ]; then printf '%s\n' "$GUEST_CMD"; fi > "$root/etc/erspanvm/guest-cmd.sh"
  write_guest_init > "$root/init"
  write_guest_test > "$root/etc/erspanvm/erspan-test.sh"
  chmod 0755 "$root/init" "$root/etc/erspanvm/erspan-test.sh"
  if [ -n "$EXTRA_DIR" ]; then cp -a "$EXTRA_DIR"/. "$root/extra/"; fi

  INITRD="$WORK/initramfs.cpio"
  (cd "$root" && find . -print0 | LC_ALL=C sort -z |
     cpio --null -o -H newc --quiet -R 0:0) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  log "initramfs: $INITRD ($(du -h "$INITRD" | cut -f1), $(wc -l < "$root/etc/erspanvm/modules.list") modules)"
}

# /init of the guest (dash, PID 1). Always ends in a power-off.
write_guest_init() {
  cat <<'EOF'
#!/bin/sh
export PATH=/extra:/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TERM=dumb
echo   # the BIOS leaves the console mid-line
. /etc/erspanvm/config
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null

result=PASS reasons=""
fail() { result=FAIL; reasons="${reasons:+$reasons; }$*"; }

echo "erspan-vm: guest kernel $(uname -r)"
# Before ip_gre loads: 2 = no fallback gre0/gretap0/erspan0 devices anywhere
# (otherwise ip_gre adds them to every network namespace).
sysctl -qw net.core.fb_tunnels_only_for_init_net="$FB_TUNNELS" || fail "sysctl"
while read -r m; do
  case "$m" in */dummy.ko) args=numdummies=0 ;; *) args= ;; esac  # no stray dummy0
  insmod "/lib/modules/$KVER/$m" $args || fail "insmod $m"
done < /etc/erspanvm/modules.list
ip link set lo up

if [ "$DEFAULT_TEST" = 1 ]; then
  sh /etc/erspanvm/erspan-test.sh || fail "built-in ERSPAN test"
fi
if [ -s /etc/erspanvm/guest-cmd.sh ]; then
  echo "erspan-vm: running guest command"
  (cd /extra && exec sh -e /etc/erspanvm/guest-cmd.sh)
  rc=$?
  echo "erspan-vm: guest command exited $rc"
  [ "$rc" = 0 ] || fail "guest command exited $rc"
fi

echo "ERSPAN-VM-RESULT: $result${reasons:+ ($reasons)}"
sync
poweroff -f
EOF
}

# Built-in test: namespaces a and b joined by a veth pair (underlay), an
# ERSPAN v2 tunnel between them. Phase 1: ICMP across the tunnel. Phase 2: a
# port in a (peer in namespace c) mirrored into the tunnel with tc matchall +
# mirred, the way a switch mirrors a port. Checks the counters of both tunnel
# ends and, with tc u32 on the underlay, that the packets on the wire are GRE
# 0x22EB (ERSPAN type III, i.e. v2) with the right session ID, hwid and dir.
write_guest_test() {
  cat <<'EOF'
#!/bin/sh
set -eu
KEY=100          # ERSPAN session ID (10 bits)
HWID_AB=7        # hwid of the a->b tunnel (erspan_dir ingress: D bit 0)
HWID_BA=9        # hwid of the b->a tunnel (erspan_dir egress: D bit 1)
N=5              # packets sent per phase
say() { echo "erspan-test: $*"; }
counter() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

# u32 match on the IPv4 underlay (offsets from the IP header, no IP options):
#  20: GRE flags+ver = 0x1000 (S bit only)   22: protocol = 0x22EB (ERSPAN III)
#  28: ERSPAN ver nibble = 2                  30: session ID (low 10 bits)
#  38: ...|hwid(6)|D(1)|gra(2)|O(1): mask 0x03f8 covers hwid and D
erspan_filter() { # ns dev hwid dbit
  tc -n "$1" qdisc add dev "$2" clsact
  tc -n "$1" filter add dev "$2" ingress pref 10 protocol ip u32 \
    match u8 0x45 0xff at 0 match u8 47 0xff at 9 \
    match u16 0x1000 0xffff at 20 match u16 0x22eb 0xffff at 22 \
    match u8 0x20 0xf0 at 28 match u16 "$KEY" 0x03ff at 30 \
    match u16 $(( ($3 << 4) | ($4 << 3) )) 0x03f8 at 38 \
    action pass
}
erspan_hits() { # ns dev -> packets that matched its ingress filter pref 10
  tc -n "$1" -s filter show dev "$2" ingress pref 10 |
    sed -n 's/.*success \([0-9]*\)).*/\1/p' | head -n 1
}
veth_pair() { # ns1 dev1 addr1 ns2 dev2 addr2
  ip link add "$2" type veth peer name "$5"
  ip link set "$2" netns "$1"
  ip link set "$5" netns "$4"
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$4" addr add "$6" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}
ok=1
check() { # value minimum what
  if [ "${1:-0}" -ge "$2" ]; then say "ok: $3: $1"; else say "FAIL: $3: ${1:-0} < $2"; ok=0; fi
}

say "namespaces a, b, c; underlay veth va 10.99.0.1 <-> vb 10.99.0.2"
for ns in a b c; do ip netns add $ns; ip -n $ns link set lo up; done
veth_pair a va 10.99.0.1/24 b vb 10.99.0.2/24

say "ERSPAN v2 tunnels erspan1 in a and b (key $KEY)"
ip -n a link add erspan1 type erspan local 10.99.0.1 remote 10.99.0.2 seq key $KEY \
  erspan_ver 2 erspan_dir ingress erspan_hwid $HWID_AB
ip -n b link add erspan1 type erspan local 10.99.0.2 remote 10.99.0.1 seq key $KEY \
  erspan_ver 2 erspan_dir egress erspan_hwid $HWID_BA
ip -n a addr add 192.168.99.1/24 dev erspan1
ip -n b addr add 192.168.99.2/24 dev erspan1
ip -n a link set erspan1 up
ip -n b link set erspan1 up
for ns in a b; do
  ip -n $ns -d link show dev erspan1 |
    sed -n "s/^ *\(erspan .*erspan_hwid [0-9a-fx]*\).*/erspan-test: $ns: \1/p"
done
erspan_filter b vb $HWID_AB 0
erspan_filter a va $HWID_BA 1

say "phase 1: ping -c $N 192.168.99.2 through the tunnel"
rx0=$(counter b erspan1 rx_packets); tx0=$(counter a erspan1 tx_packets)
ip netns exec a ping -q -c $N -i 0.2 -w 20 192.168.99.2 || { say "FAIL: ping"; ok=0; }
check $(( $(counter a erspan1 tx_packets) - tx0 )) $N "a erspan1 tx_packets delta"
check $(( $(counter b erspan1 rx_packets) - rx0 )) $N "b erspan1 rx_packets delta"
check "$(erspan_hits b vb)" $N "wire a->b GRE 0x22EB, ERSPAN v2, session $KEY, hwid $HWID_AB, dir ingress"
check "$(erspan_hits a va)" $N "wire b->a GRE 0x22EB, ERSPAN v2, session $KEY, hwid $HWID_BA, dir egress"

say "phase 2: mirror port src0 (in a, peer in c) into the tunnel: matchall + mirred"
veth_pair a src0 10.98.0.1/24 c src1 10.98.0.2/24
tc -n a qdisc add dev src0 clsact
tc -n a filter add dev src0 ingress matchall action mirred egress mirror dev erspan1
# On b, count the decapsulated mirrored frames: ICMP from c's address.
tc -n b qdisc add dev erspan1 clsact
tc -n b filter add dev erspan1 ingress pref 10 protocol ip u32 \
  match ip src 10.98.0.2/32 match ip protocol 1 0xff action pass
rx0=$(counter b erspan1 rx_packets); w0=$(erspan_hits b vb)
ip netns exec c ping -q -c $N -i 0.2 -w 20 10.98.0.1 || { say "FAIL: ping"; ok=0; }
check $(( $(counter b erspan1 rx_packets) - rx0 )) $N "b erspan1 rx_packets delta"
check $(( $(erspan_hits b vb) - w0 )) $N "wire a->b ERSPAN v2 delta"
check "$(erspan_hits b erspan1)" $N "mirrored ICMP from c decapsulated on b erspan1"

for ns in a b c; do ip netns del $ns; done
if [ "$ok" = 1 ]; then
  say "PASS: ERSPAN v2 (GRE 0x22EB, type III) tunnel and port mirroring work"
else
  exit 1
fi
EOF
}

# ---------------------------------------------------------------- the VM ---
strip_escapes() { sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//'; }

run_vm() {
  local log="$WORK/console.log" rc=0
  local append="console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4"
  : > "$log"
  log "booting $KVER under qemu -accel $ACCEL (timeout ${TIMEOUT}s), console log: $log"
  timeout -k 10 "$TIMEOUT" env "${QEMU_ENV[@]}" "$QEMU" "${QEMU_OPTS[@]}" \
    -accel "$ACCEL" -machine pc -cpu "$CPU" -m "$MEM_MB" -smp "$SMP" \
    -nodefaults -nographic -serial stdio -no-reboot -nic none \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "$append" \
    </dev/null >"$log" 2>&1 9>&- &
  QEMU_PID=$!
  # Live console on stdout, minus the terminal resets SeaBIOS sends.
  tail -n +1 -f --pid="$QEMU_PID" "$log" 9>&- | strip_escapes &
  TAIL_PID=$!
  wait "$QEMU_PID" || rc=$?
  QEMU_PID=""
  wait "$TAIL_PID" 2>/dev/null || true
  TAIL_PID=""
  [ "$rc" != 124 ] || log "VM run hit the ${TIMEOUT}s timeout"
  [ "$rc" = 0 ] || log "qemu exited with status $rc"
  strip_escapes < "$log" | grep "^$RESULT_MARKER" | tail -n 1 > "$WORK/result.txt" || true
  grep -q "^$RESULT_MARKER PASS" "$WORK/result.txt"
}

main() {
  parse_args "$@"
  [ "$(id -u)" = 0 ] || die "run as root (apt-get, and qemu's files under $WORK)"
  mkdir -p "$WORK"
  exec 9>"$WORK/.lock"
  flock -w 600 9 || die "another run holds $WORK/.lock"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local t0 t1 t2 prep build boot status
  t0=$(now)
  install_host_tools
  ensure_qemu
  prepare_kernel
  t1=$(now); prep=$(elapsed "$t0")
  build_initramfs
  t2=$(now); build=$(elapsed "$t1")
  status=0
  run_vm || status=1
  boot=$(elapsed "$t2")
  log "timings: host tools + kernel fetch/unpack ${prep}s, initramfs ${build}s, VM boot+test ${boot}s, total $(elapsed "$t0")s"
  if [ "$status" = 0 ]; then
    log "PASS ($(cat "$WORK/result.txt"))"
  else
    log "FAIL ($(grep . "$WORK/result.txt" 2>/dev/null || echo "no result line from the guest"); see $WORK/console.log)"
  fi
  return "$status"
}

main "$@"
