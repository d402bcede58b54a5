#!/usr/bin/env bash
# `make run`: runs telegen-probe, telegen-gateway and telegen-exporter in the foreground, ready to
# be tried with curl, telegenctl or grpcurl. The gateway and exporter run unprivileged
# (as nobody, no capabilities, when started as root).
#
# As root: creates a demo network namespace `telegen-demo` with a veth pair
# (tgdemo0 here, 10.199.0.1/30 <-> tgdemo1 inside, 10.199.0.2/30), sends one
# UDP datagram a 0.2 s from inside the namespace to 10.199.0.1:9, and runs the
# probe with TELEGEN_MIRROR_MODE=direct so that a job on tgdemo0 counts real
# packets. PORT=<ifname> uses that existing port instead of the demo pair.
# Ctrl-C (or SIGTERM) stops the probe and removes the demo namespace and veth.
#
# Not root: runs the probe in placeholder mode (no BPF, no attachment) on a
# socket under $XDG_RUNTIME_DIR (or /tmp): the whole API works, counters stay 0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

BIN=${TELEGEN_PROBE_BIN:-target/release/telegen-probe}
GW_BIN=${TELEGEN_GATEWAY_BIN:-target/release/telegen-gateway}
EXP_BIN=${TELEGEN_EXPORTER_BIN:-target/release/telegen-exporter}
CTL=target/release/telegenctl
NS=telegen-demo
HOST_IF=tgdemo0
NS_IF=tgdemo1
HOST_IP=10.199.0.1
NS_IP=10.199.0.2

if [[ -t 1 ]]; then
	say() { printf '\033[1mrun:\033[0m %s\n' "$*"; }
else
	say() { printf 'run: %s\n' "$*"; }
fi
die() {
	printf 'run: ERROR: %s\n' "$*" >&2
	exit 1
}

for b in "$BIN" "$GW_BIN" "$EXP_BIN"; do
	[[ -x $b ]] || die "$b is not built: run 'make run' (it builds it), or 'make build'"
done

ROOT=0
[[ $(id -u) -eq 0 ]] && ROOT=1

if ((ROOT)); then
	export TELEGEN_MIRROR_MODE=${TELEGEN_MIRROR_MODE:-direct}
else
	export TELEGEN_MIRROR_MODE=placeholder
	export TELEGEN_PROBE_ADDR=${TELEGEN_PROBE_ADDR:-unix:${XDG_RUNTIME_DIR:-/tmp}/telegen-sonic/probe.sock}
fi
export RUST_LOG=${RUST_LOG:-info}
export TELEGEN_API_LISTEN=${TELEGEN_API_LISTEN:-127.0.0.1:8080}
API=http://$TELEGEN_API_LISTEN
# The exporter pushes OTLP to OTEL_EXPORTER_OTLP_ENDPOINT (a collector, if
# there is one) and serves the same series as Prometheus text.
export TELEGEN_PROM_LISTEN=${TELEGEN_PROM_LISTEN:-127.0.0.1:9464}
export OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-http://localhost:4317}
# The gateway runs as nobody; the probe gives it its socket through the group.
if ((ROOT)); then
	# A dedicated group (gid 4737, "telegen"): the socket's, and the one
	# the probe allows besides root (TELEGEN_PROBE_ALLOW).
	export TELEGEN_PROBE_SOCKET_GROUP=${TELEGEN_PROBE_SOCKET_GROUP:-4737}
fi
ADDR=${TELEGEN_PROBE_ADDR:-unix:/run/telegen-sonic/probe.sock}

# grpcurl over a unix socket needs -authority localhost (else the server
# answers PROTOCOL_ERROR); flags, -d included, come before the address.
case $ADDR in
unix:*)
	SOCK=${ADDR#unix://}
	[[ $SOCK == "$ADDR" ]] && SOCK=${ADDR#unix:}
	GRPC=(grpcurl -plaintext -authority localhost -unix)
	TARGET=$SOCK
	;;
*)
	SOCK=
	GRPC=(grpcurl -plaintext)
	TARGET=${ADDR#http://}
	;;
esac

# A probe already serving this socket would lose it to a second one.
if [[ -n $SOCK && -S $SOCK ]] && command -v python3 >/dev/null 2>&1 &&
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(sys.argv[1])' "$SOCK" 2>/dev/null; then
	die "a probe is already serving $SOCK: stop it first"
fi

DEMO=0
GEN_PID=
PROBE_PID=
GW_PID=
EXP_PID=

demo_down() {
	# Deleting one end of a veth pair deletes both.
	ip link del "$HOST_IF" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
}

stop_demo_jobs() {
	# Stop the jobs on the demo port before the port goes away, so the pinned
	# state holds no job for a deleted interface.
	command -v curl >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 || return 0
	local ids id
	ids=$(curl -sS -m 3 "$API/jobs" 2>/dev/null |
		python3 -c '
import json, sys
for j in json.load(sys.stdin).get("jobs", []):
    if j.get("port") == sys.argv[1] and j.get("status") in ("starting", "running"):
        print(j["job_id"])
' "$HOST_IF" 2>/dev/null) || return 0
	for id in $ids; do
		say "stopping demo job $id"
		curl -sS -m 3 -X POST "$API/jobs/$id/stop" >/dev/null 2>&1 || true
	done
}

stop_pid() { # pid name
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$1" 2>/dev/null; then
		say "$2 did not stop in 10 s: killing it"
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if ((DEMO)) && [[ -n $GW_PID ]] && kill -0 "$PROBE_PID" 2>/dev/null; then
		stop_demo_jobs
	fi
	if [[ -n $EXP_PID ]]; then stop_pid "$EXP_PID" exporter; fi
	if [[ -n $GW_PID ]]; then stop_pid "$GW_PID" gateway; fi
	if [[ -n $PROBE_PID ]]; then stop_pid "$PROBE_PID" probe; fi
	if [[ -n $GEN_PID ]]; then
		kill "$GEN_PID" 2>/dev/null || true
		wait "$GEN_PID" 2>/dev/null || true
	fi
	if ((DEMO)); then
		demo_down
		say "removed the demo namespace $NS and the veth pair $HOST_IF/$NS_IF"
	fi
	exit "$rc"
}
trap cleanup EXIT
# Stopping on request (Ctrl-C, SIGTERM) is a clean end: exit 0 after cleanup.
trap 'exit 0' INT TERM
trap 'exit 129' HUP

if ((ROOT)); then
	if [[ -n ${PORT:-} ]]; then
		ip link show dev "$PORT" >/dev/null 2>&1 || die "PORT=$PORT: no such interface"
		JOB_PORT=$PORT
	else
		command -v ip >/dev/null 2>&1 || die "ip (iproute2) is missing: run 'make deps'"
		DEMO=1
		JOB_PORT=$HOST_IF
		demo_down # leftovers of a run that was killed with SIGKILL
		say "creating the demo: namespace $NS, veth $HOST_IF ($HOST_IP/30) <-> $NS_IF ($NS_IP/30, inside $NS)"
		ip netns add "$NS"
		ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS"
		# No IPv6 on the pair (no router solicitations, no MLD): the counters
		# show the demo's traffic only. Set before the links come up.
		sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1" 2>/dev/null || true
		ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$NS_IF.disable_ipv6=1" 2>/dev/null || true
		ip addr add "$HOST_IP/30" dev "$HOST_IF"
		ip -n "$NS" addr add "$NS_IP/30" dev "$NS_IF"
		ip link set "$HOST_IF" up
		ip -n "$NS" link set lo up
		ip -n "$NS" link set "$NS_IF" up
		# Traffic: one UDP datagram every 0.2 s to the discard port, through
		# bash's /dev/udp (there may be no ping). It stops by itself when this
		# script is gone.
		ip netns exec "$NS" bash -c '
			while kill -0 "$1" 2>/dev/null; do
				printf "telegen-demo\n" >"/dev/udp/$2/9" 2>/dev/null || true
				sleep 0.2
			done' telegen-demo-traffic $$ "$HOST_IP" </dev/null &
		GEN_PID=$!
		say "traffic: one UDP datagram every 0.2 s from $NS_IP to $HOST_IP:9 (ingress on $HOST_IF)"
	fi
else
	JOB_PORT=${PORT:-lo}
	say "NOT ROOT: running in placeholder mode (TELEGEN_MIRROR_MODE=placeholder): no BPF is"
	say "loaded and nothing is attached; the API works and counters stay 0."
	say "For the real datapath and the demo veth pair run it as root: sudo make run"
fi

g="${GRPC[*]}"
cat <<EOF

──────────────────────────────────────────────────────────────────────────────
 telegen-probe: mirror mode $TELEGEN_MIRROR_MODE, gRPC on $ADDR
 telegen-gateway: REST on $API$( ((ROOT)) && echo " (gateway and exporter run as nobody, no capabilities)" || true)
 telegen-exporter: OTLP/gRPC to $OTEL_EXPORTER_OTLP_ENDPOINT, Prometheus text on http://$TELEGEN_PROM_LISTEN/metrics
 Try, from another terminal:

  # the seed's REST flow: start a job on $JOB_PORT, look at it, stop it
  curl -sS -X POST $API/jobs/start -H 'Content-Type: application/json' -d '{"port":"$JOB_PORT","direction":"ingress"}'
  JOB=\$(curl -sS -X POST $API/jobs/start -H 'Content-Type: application/json' -d '{"port":"$JOB_PORT","direction":"ingress"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
  curl -sS $API/jobs/\$JOB
  curl -sS $API/jobs/\$JOB/results
  curl -sS -X POST $API/jobs/\$JOB/stop

  # the same with the CLI (tables by default, --json for scripts)
  $CTL start --port $JOB_PORT --direction ingress
  $CTL list
  $CTL results \$JOB

  # the counters as the exporter sends them (same series as over OTLP)
  curl -sS http://$TELEGEN_PROM_LISTEN/metrics

  # the API document, and the probe's gRPC API directly
  curl -sS $API/openapi.json
  $g $TARGET list
  $g $TARGET telegen.v1.Probe/GetInfo
  $g -d '{"interval_ms":2000}' $TARGET telegen.v1.Probe/WatchCounters
EOF
if ((ROOT)); then
	cat <<EOF

  # the kernel's counters, straight from the pinned maps
  bpftool map dump pinned ${TELEGEN_BPF_PIN_DIR:-/sys/fs/bpf/telegen-sonic}/stats_percpu
EOF
fi
cat <<EOF

 Ctrl-C stops all three$( ((DEMO)) && echo " and removes the demo namespace and veth pair" || true).
──────────────────────────────────────────────────────────────────────────────

EOF
command -v grpcurl >/dev/null 2>&1 || say "grpcurl is not installed: 'make deps' installs it"

# The services get their own session, so that a Ctrl-C in this terminal
# reaches this script first: it stops the demo jobs, then the services.
SETSID=()
if command -v setsid >/dev/null 2>&1; then SETSID=(setsid); fi
"${SETSID[@]}" "$BIN" </dev/null &
PROBE_PID=$!

# The gateway would answer 503 until the probe listens and recover by itself;
# waiting for the socket makes a cleaner start.
if [[ -n $SOCK ]]; then
	for _ in $(seq 100); do
		[[ -S $SOCK ]] && break
		kill -0 "$PROBE_PID" 2>/dev/null || break
		sleep 0.1
	done
fi
# Least privilege for real: as root, the unprivileged services run as
# nobody in the socket's group, with no capabilities and no way back.
unprivileged() {
	if ((ROOT)); then
		"${SETSID[@]}" setpriv --reuid=65534 --regid="$TELEGEN_PROBE_SOCKET_GROUP" --clear-groups --inh-caps=-all \
			--bounding-set=-all --no-new-privs "$@" </dev/null &
	else
		"${SETSID[@]}" "$@" </dev/null &
	fi
}
unprivileged "$GW_BIN"
GW_PID=$!
unprivileged "$EXP_BIN"
EXP_PID=$!

# Any service ending ends the run (cleanup stops the others).
rc=0
wait -n "$PROBE_PID" "$GW_PID" "$EXP_PID" || rc=$?
exit "$rc"
