#!/usr/bin/env bash
# `make test-compose`: docker-compose.yml for real, with podman-compose.
#
# As root: installs podman, podman-compose and runc when missing (Debian),
# brings the compose project up from the images `make docker` built
# (localhost/telegen-sonic/*:latest), runs the seed's curl flow against the
# gateway on a veth pair it creates (a direct-mode job on tgcomp0, real UDP
# traffic from a namespace, the job's packets counted, stopped), checks that
# the exporter's /metrics answers and is connected to the probe, that the
# gateway reports the version the image labels carry, and tears everything
# down, also on failure. Prints how long it took.
#
# Podman as it works here (see the NOTES): vfs storage, runc, cgroupfs, and a
# containers.conf with no default ulimits. Ports and pin directory are the
# test's own, so that a `make run` beside it is not disturbed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

t0=$(date +%s.%N)
say() { printf 'test-compose: %s\n' "$*"; }
fail() {
	printf 'test-compose: FAIL: %s\n' "$*" >&2
	exit 1
}
[[ $(id -u) -eq 0 ]] || fail "needs root (podman with host network, BPF, veth): sudo make test-compose"

# --- podman, the NOTES recipe ---------------------------------------------------
need=()
for c in podman podman-compose runc curl python3; do
	command -v "$c" >/dev/null 2>&1 || need+=("$c")
done
if ((${#need[@]})); then
	say "installing ${need[*]} (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
work=$(mktemp -d /tmp/telegen-compose.XXXXXX)
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
export CONTAINERS_CONF="$work/containers.conf"
export STORAGE_DRIVER=${PODMAN_STORAGE_DRIVER:-vfs}

# --- the compose project's settings ----------------------------------------------
export COMPOSE_PROJECT_NAME=telegen-compose-test
export TELEGEN_API_LISTEN=127.0.0.1:${TEST_API_PORT:-18080}
export TELEGEN_PROM_LISTEN=127.0.0.1:${TEST_PROM_PORT:-19464}
export TELEGEN_BPF_PIN_DIR=/sys/fs/bpf/telegen-compose-test
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:${TEST_OTLP_PORT:-14317} # nobody listens: the exporter retries
export TELEGEN_MIRROR_MODE=direct
export RUST_LOG=info
API=http://$TELEGEN_API_LISTEN
PROM=http://$TELEGEN_PROM_LISTEN
NS=tgcomp-ns
IF=tgcomp0
PEER=tgcomp1
# Debian 12's podman-compose 1.0.3 adds a bridge network to host-network
# services, ignores profiles and leaves `${VAR:-}` uninterpolated: use a
# current podman-compose from PyPI (in its own venv) when the installed one is
# older than 1.1.
PC=podman-compose
pc_version=$(podman-compose version 2>/dev/null | sed -n 's/^podman-compose version //p' | head -n1)
if [[ -z $pc_version ]] || [[ $(printf '%s\n1.1\n' "$pc_version" | sort -V | head -n1) != 1.1 ]]; then
	venv=/var/lib/telegen-sonic/podman-compose
	if [[ ! -x $venv/bin/podman-compose ]]; then
		say "podman-compose ${pc_version:-missing} is too old: installing podman-compose from PyPI into $venv"
		python3 -m venv "$venv" || {
			apt-get install -y -qq python3-venv
			python3 -m venv "$venv"
		}
		"$venv/bin/pip" install -q --disable-pip-version-check 'podman-compose>=1.3'
	fi
	PC=$venv/bin/podman-compose
fi
say "$($PC version 2>/dev/null | head -n1)"
COMPOSE=("$PC" -f docker-compose.yml)

for img in telegen-probe telegen-gateway telegen-exporter; do
	podman image exists "localhost/telegen-sonic/$img:latest" ||
		fail "image localhost/telegen-sonic/$img:latest is missing: run 'make docker' (make test-compose does)"
done

GEN_PID=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((rc)); then
		say "logs of the failed run:"
		for s in probe gateway exporter; do
			echo "----- $s"
			podman logs --tail 30 "${COMPOSE_PROJECT_NAME}_${s}_1" 2>&1 || true
		done
	fi
	say "tearing down"
	"${COMPOSE[@]}" down -v -t 5 >"$work/down.log" 2>&1 || cat "$work/down.log" >&2
	[[ -n $GEN_PID ]] && kill "$GEN_PID" 2>/dev/null || true
	ip link del "$IF" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TELEGEN_BPF_PIN_DIR" "$work"
	say "took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
	if ((rc)); then say "FAILED"; else say "PASS"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- host: bpffs, the port and its traffic --------------------------------------
if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
	say "mounting bpffs at /sys/fs/bpf (the probe container has no CAP_SYS_ADMIN to do it)"
	mount -t bpf bpf /sys/fs/bpf
fi
ip link del "$IF" 2>/dev/null || true
ip netns del "$NS" 2>/dev/null || true
"${COMPOSE[@]}" down -v -t 5 >/dev/null 2>&1 || true # leftovers of a killed run
rm -rf "$TELEGEN_BPF_PIN_DIR"
ip netns add "$NS"
ip link add "$IF" type veth peer name "$PEER" netns "$NS"
sysctl -qw "net.ipv6.conf.$IF.disable_ipv6=1" 2>/dev/null || true
ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$PEER.disable_ipv6=1" 2>/dev/null || true
ip addr add 10.199.3.1/30 dev "$IF"
ip -n "$NS" addr add 10.199.3.2/30 dev "$PEER"
ip link set "$IF" up
ip -n "$NS" link set "$PEER" up
ip netns exec "$NS" bash -c '
	for _ in $(seq 600); do
		kill -0 "$1" 2>/dev/null || exit 0
		printf "telegen-compose\n" >/dev/udp/10.199.3.1/9 2>/dev/null || true
		sleep 0.1
	done' traffic $$ </dev/null &
GEN_PID=$!

# --- up ------------------------------------------------------------------------
t_up=$(date +%s.%N)
say "podman-compose up -d"
"${COMPOSE[@]}" up -d >"$work/up.log" 2>&1 || {
	cat "$work/up.log" >&2
	fail "podman-compose up failed"
}
ready=0
for _ in $(seq 150); do
	if [[ $(curl -s -o /dev/null -w '%{http_code}' "$API/readyz" 2>/dev/null) == 200 ]]; then
		ready=1
		break
	fi
	sleep 0.2
done
((ready)) || fail "the gateway's /readyz did not answer 200 within 30 s"
say "ready $(awk -v a="$t_up" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after up"

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }

# --- the seed's curl flow ---------------------------------------------------------
say "POST /jobs/start {port: $IF, direction: ingress, mirror_mode: direct}"
start=$(curl -sS -X POST "$API/jobs/start" -H 'Content-Type: application/json' \
	-d "{\"port\":\"$IF\",\"direction\":\"ingress\",\"mirror_mode\":\"direct\",\"duration_sec\":60}")
echo "  $start"
JOB=$(json 'd["job_id"]' <<<"$start") || fail "no job_id in $start"
status=
for _ in $(seq 50); do
	status=$(curl -sS "$API/jobs/$JOB" | json 'd["status"]')
	[[ $status == running ]] && break
	sleep 0.2
done
[[ $status == running ]] || fail "job $JOB is $status, not running"
say "GET /jobs/$JOB: running ($(curl -sS "$API/jobs/$JOB" | json 'd.get("attach_mode")'))"
pk=0
for _ in $(seq 50); do
	pk=$(curl -sS "$API/jobs/$JOB/results" | json 'd["packets_total"]')
	((pk > 0)) && break
	sleep 0.2
done
((pk > 0)) || fail "job $JOB counted no packet of the UDP traffic on $IF"
say "GET /jobs/$JOB/results: packets_total=$pk"
stopped=$(curl -sS -X POST "$API/jobs/$JOB/stop" | json 'd["status"]')
[[ $stopped == stopped || $stopped == stopping ]] || fail "stop answered status $stopped"
say "POST /jobs/$JOB/stop: $stopped"

# --- exporter --------------------------------------------------------------------
connected=
for _ in $(seq 50); do
	metrics=$(curl -sS "$PROM/metrics" 2>/dev/null || true)
	connected=$(awk '$1 == "telegen_exporter_probe_connected" { print $2 }' <<<"$metrics")
	[[ $connected == 1 ]] && break
	sleep 0.2
done
[[ $connected == 1 ]] || fail "exporter /metrics: telegen_exporter_probe_connected is '${connected}', not 1"
grep -q '^bpf_packets_total' <<<"$metrics" || fail "exporter /metrics has no bpf_packets_total"
say "GET $PROM/metrics: probe connected, $(grep -c '^bpf_packets_total' <<<"$metrics") bpf_packets_total series"

# --- version: what the gateway says = what the image labels say ------------------
v_api=$(curl -sS "$API/version" | json 'd["version"] + " " + d["commit"]')
v_img=$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}} {{index .Labels "org.opencontainers.image.revision"}}' localhost/telegen-sonic/telegen-gateway:latest)
[[ $v_api == "$v_img" ]] || fail "gateway /version '$v_api' != image labels '$v_img'"
say "version: $v_api (gateway /version = image labels)"

# --- least privilege, as running ---------------------------------------------------
for s in gateway exporter; do
	u=$(podman inspect --format '{{.Config.User}}' "${COMPOSE_PROJECT_NAME}_${s}_1")
	[[ $u == 65534:4737 ]] || fail "$s runs as '$u', not 65534:4737 (nobody in the probe socket's group)"
done
say "gateway and exporter run as 65534:4737"
caps=$(podman inspect --format '{{.EffectiveCaps}}' "${COMPOSE_PROJECT_NAME}_probe_1")
[[ $caps == "[CAP_BPF CAP_NET_ADMIN CAP_PERFMON]" ]] || fail "the probe runs with $caps, not exactly CAP_BPF CAP_NET_ADMIN CAP_PERFMON"
say "the probe runs with $caps only"
