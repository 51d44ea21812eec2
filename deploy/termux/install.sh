#!/usr/bin/env bash
# Install or upgrade the fleetnas agent on Android, inside Termux (no root). See deploy/termux/README.md first:
# Android 12+ kills the agent's measurement workers unless the phantom process killer is turned off.
#
#   bash install.sh [--package SPEC] [--listen HOST:PORT | --connect HOST:PORT [--name NAME]] [--no-service]
#                   [--no-selftest]
#   --connect: the phone dials the host's hub (fleetnas search|hub --listen HOST:PORT): for mobile data and NAT.
# grpcio, onnxruntime and tflite-runtime do not build with pip on Android: they come from Termux's own packages,
# and the venv sees them through --system-site-packages. fleetnas itself and its pure-Python dependencies are
# installed with pip --no-deps so that pip never tries to compile grpcio. Re-running upgrades in place.
set -euo pipefail

PACKAGE=fleetnas
LISTEN=0.0.0.0:50051
CONNECT=""
NAME=""
SERVICE=yes
SELFTEST=yes
VENV=${HOME}/.fleetnas/venv
CONF_DIR=${HOME}/.config/fleetnas
CACHE_DIR=${HOME}/.cache/fleetnas-agent

log() { printf '[fleetnas-termux] %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --package) [[ $# -ge 2 ]] || die "--package needs a value"; PACKAGE=$2; shift ;;
        --listen) [[ $# -ge 2 ]] || die "--listen needs a value"; LISTEN=$2; shift ;;
        --no-service) SERVICE=no ;;
        --no-selftest) SELFTEST=no ;;
        --connect) [[ $# -ge 2 ]] || die "--connect needs a value"; CONNECT=$2; shift ;;
        --name) [[ $# -ge 2 ]] || die "--name needs a value"; NAME=$2; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
listen_re='^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$'
[[ "$LISTEN" =~ $listen_re ]] || die "--listen must be HOST:PORT, got '$LISTEN'"
[[ -z "$CONNECT" || "$CONNECT" =~ $listen_re ]] || die "--connect must be the host's HOST:PORT, got '$CONNECT'"
[[ -z "$NAME" || "$NAME" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] \
    || die "--name may hold only letters, digits, '.', '_' and '-', got '$NAME'"

if [[ -z "${TERMUX_VERSION:-}" || -z "${PREFIX:-}" || ! -d "${PREFIX:-/nonexistent}/var" ]]; then
    die "this script runs inside Termux on Android; on Debian, Raspberry Pi OS or JetPack use deploy/install.sh"
fi

log "pkg install python python-numpy python-grpcio python-onnxruntime termux-services"
pkg install -y python python-numpy python-grpcio python-onnxruntime termux-services
# LiteRT is optional: not every Termux architecture carries it.
if ! pkg install -y python-tflite-runtime; then
    log "python-tflite-runtime is not available here: the agent will offer onnxruntime only"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV (--system-site-packages: grpcio, numpy, onnxruntime come from Termux)"
    python -m venv --system-site-packages "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "$@"; }
log "pip install --no-deps --upgrade $PACKAGE (+ its pure-Python dependencies)"
pip_install --no-deps --upgrade "$PACKAGE"
pip_install --no-deps --upgrade grpcio-health-checking grpcio-reflection
pip_install --upgrade --only-binary=:all: 'protobuf>=7.35.1,<8'
# The generated stubs refuse a grpcio older than the one they were generated for: say so plainly.
# (Android has no /tmp: mktemp uses Termux's $TMPDIR.)
import_err=$(mktemp)
if ! "$VENV/bin/python" -c 'import fleetnas.agent.v1.agent_pb2_grpc' 2>"$import_err"; then
    cat "$import_err" >&2
    die "the fleetnas stubs do not load with Termux's grpcio ($("$VENV/bin/python" -c 'import grpc; print(grpc.__version__)' 2>/dev/null || echo missing)); run 'pkg upgrade python-grpcio' and re-run"
fi
rm -f "$import_err"

mkdir -p "$CONF_DIR" "$CACHE_DIR"
chmod 0700 "$CONF_DIR"
if [[ ! -s "$CONF_DIR/token" ]]; then
    (umask 0077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$CONF_DIR/token")
    log "generated $CONF_DIR/token: copy it to the host's devices.toml token_file"
fi

if [[ "$SERVICE" == yes ]]; then
    # termux-services (runit): the agent is restarted if it dies and started with Termux (and Termux:Boot).
    svc_dir=$PREFIX/var/service/fleetnas-agent
    if [[ -n "$CONNECT" ]]; then
        NAME=${NAME:-$(getprop ro.product.model 2>/dev/null | tr -c 'A-Za-z0-9._\n-' '-' || true)}
        NAME=${NAME:-phone}
        agent_cmd="connect $CONNECT --name $NAME"
    else
        agent_cmd="serve --listen $LISTEN"
    fi
    mkdir -p "$svc_dir/log"
    cat >"$svc_dir/run" <<RUN
#!/data/data/com.termux/files/usr/bin/sh
exec 2>&1
exec $VENV/bin/fleetnas-agent $agent_cmd --token-file $CONF_DIR/token --cache-dir $CACHE_DIR
RUN
    ln -sf "$PREFIX/share/termux-services/svlogger" "$svc_dir/log/run"
    chmod 0755 "$svc_dir/run"
    if command -v sv-enable >/dev/null; then
        sv-enable fleetnas-agent || log "sv-enable failed: restart Termux once so runsvdir starts, then re-run"
        sv restart fleetnas-agent 2>/dev/null || true
    fi
    log "service: sv status fleetnas-agent; logs in $PREFIX/var/log/sv/fleetnas-agent/current"
    if [[ -n "$CONNECT" ]]; then
        log "dialling $CONNECT as $NAME: on the host, a [[device]] with name = \"$NAME\", address = \"dial-in\" and this token"
    fi
fi

if [[ "$SELFTEST" == yes ]]; then
    log "fleetnas-agent selftest"
    "$VENV/bin/fleetnas-agent" selftest || die "selftest failed; see deploy/termux/README.md (phantom processes)"
fi
log "done. Keep the phone awake while measuring: termux-wake-lock (and plug it in only for latency-only runs)."
