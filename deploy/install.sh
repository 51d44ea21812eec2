#!/usr/bin/env bash
# Install, upgrade or remove the fleetnas agent on a Debian-family board (Raspberry Pi OS, JetPack, Debian, Ubuntu).
#
#   sudo ./install.sh                                  # install or upgrade from PyPI, start the service
#   sudo ./install.sh --package ./fleetnas-0.1.0-py3-none-any.whl --listen 0.0.0.0:50051
#   sudo ./install.sh --uninstall [--purge]
#
# What it sets up: a system user `fleetnas`, a venv at /opt/fleetnas/venv (owned by root: the service cannot
# rewrite its own code), /etc/fleetnas/{agent.env,token,tls/}, /var/lib/fleetnas (model cache), the hardened unit
# fleetnas-agent.service and a udev rule that lets the group fleetnas-power read RAPL energy counters.
# Re-running it upgrades in place: the token and the settings in agent.env are kept unless new flags are given.
set -euo pipefail

readonly SERVICE_USER=fleetnas
readonly POWER_GROUP=fleetnas-power
readonly PREFIX=/opt/fleetnas
readonly VENV=${PREFIX}/venv
readonly CONF_DIR=/etc/fleetnas
readonly STATE_DIR=/var/lib/fleetnas
readonly UNIT_DIR=/etc/systemd/system
readonly UDEV_RULE=/etc/udev/rules.d/60-fleetnas-power.rules
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

PACKAGE=fleetnas
PYTHON=python3
LITERT=auto
LISTEN=""
CACHE_QUOTA_MB=""
TLS_CERT=""
TLS_KEY=""
TLS_CLIENT_CA=""
NVPMODEL_MODE=""
START=auto
APT=yes
SELFTEST=yes
UNINSTALL=no
PURGE=no
PIP_EXTRA=()

usage() {
    cat <<'USAGE'
usage: install.sh [options]
  --package SPEC          what pip installs: a name/version (fleetnas==0.1.0), a wheel or an sdist (default: fleetnas)
  --python PATH           interpreter for the venv, >= 3.9 (default: python3)
  --listen HOST:PORT      address the agent serves on (default 0.0.0.0:50051, token required)
  --cache-quota-mb N      model cache size (default 2048)
  --tls-cert F --tls-key F [--tls-client-ca F]
                          serve TLS with these files (copied to /etc/fleetnas/tls); --tls-client-ca demands client certs
  --no-tls                drop TLS settings kept from an earlier install
  --litert auto|yes|no    LiteRT runtime: auto installs it where a wheel exists (default auto); yes fails if none does
  --jetson-fixed-clocks MODE
                          opt-in: enable fleetnas-fixed-clocks.service (nvpmodel -m MODE, then jetson_clocks)
  --pip-arg ARG           passed to every pip install (repeatable), e.g. --pip-arg=--index-url=URL
  --no-apt                do not apt-get install python3-venv and friends (they must be present)
  --no-start              install the unit but do not enable or (re)start it (automatic where systemd is not running)
  --no-selftest           skip the final `fleetnas-agent selftest` run as the service user
  --uninstall [--purge]   remove the service, venv and udev rule; --purge also removes config, token, cache and user
USAGE
}

log() { printf '[fleetnas-install] %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --package) need_arg "$@"; PACKAGE=$2; shift ;;
            --python) need_arg "$@"; PYTHON=$2; shift ;;
            --listen) need_arg "$@"; LISTEN=$2; shift ;;
            --cache-quota-mb) need_arg "$@"; CACHE_QUOTA_MB=$2; shift ;;
            --tls-cert) need_arg "$@"; TLS_CERT=$2; shift ;;
            --tls-key) need_arg "$@"; TLS_KEY=$2; shift ;;
            --tls-client-ca) need_arg "$@"; TLS_CLIENT_CA=$2; shift ;;
            --no-tls) TLS_CERT=none ;;
            --litert) need_arg "$@"; LITERT=$2; shift ;;
            --jetson-fixed-clocks) need_arg "$@"; NVPMODEL_MODE=$2; shift ;;
            --pip-arg) need_arg "$@"; PIP_EXTRA+=("$2"); shift ;;
            --pip-arg=*) PIP_EXTRA+=("${1#--pip-arg=}") ;;
            --no-apt) APT=no ;;
            --no-start) START=no ;;
            --no-selftest) SELFTEST=no ;;
            --uninstall) UNINSTALL=yes ;;
            --purge) PURGE=yes ;;
            -h|--help) usage; exit 0 ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
        shift
    done
    case "$LITERT" in auto|yes|no) ;; *) die "--litert must be auto, yes or no, got '$LITERT'" ;; esac
    if [[ -n "$LISTEN" && ! "$LISTEN" =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$ ]]; then
        die "--listen must be HOST:PORT (e.g. 0.0.0.0:50051 or [::]:50051), got '$LISTEN'"
    fi
    if [[ -n "$CACHE_QUOTA_MB" && ! "$CACHE_QUOTA_MB" =~ ^[1-9][0-9]*$ ]]; then
        die "--cache-quota-mb must be a positive whole number of MiB, got '$CACHE_QUOTA_MB'"
    fi
    if [[ -n "$NVPMODEL_MODE" && ! "$NVPMODEL_MODE" =~ ^[0-9]+$ ]]; then
        die "--jetson-fixed-clocks takes an nvpmodel mode number (see 'nvpmodel -p --verbose'), got '$NVPMODEL_MODE'"
    fi
    if [[ "$TLS_CERT" != none ]] && [[ -n "$TLS_CERT" || -n "$TLS_KEY" || -n "$TLS_CLIENT_CA" ]]; then
        [[ -n "$TLS_CERT" && -n "$TLS_KEY" ]] || die "TLS needs both --tls-cert and --tls-key"
        local f
        for f in "$TLS_CERT" "$TLS_KEY" ${TLS_CLIENT_CA:+"$TLS_CLIENT_CA"}; do
            [[ -r "$f" ]] || die "TLS file '$f' does not exist or is not readable"
        done
    fi
}

# ---------------------------------------------------------------- checks

check_system() {
    [[ $EUID -eq 0 ]] || die "run as root (sudo $0 ...): it creates a system user and a systemd unit"
    [[ -r /etc/os-release ]] || die "/etc/os-release is missing: this script supports Debian-family systems only"
    local id id_like
    # shellcheck source=/dev/null
    id=$(. /etc/os-release && echo "${ID:-}")
    # shellcheck source=/dev/null
    id_like=$(. /etc/os-release && echo "${ID_LIKE:-}")
    if [[ "$id" != debian && "$id" != ubuntu && "$id" != raspbian && " $id_like " != *" debian "* ]]; then
        die "unsupported OS '$id': this script is for Debian, Ubuntu, Raspberry Pi OS and JetPack; see deploy/README.md"
    fi
    case "$(uname -m)" in
        x86_64|aarch64) ;;
        armv7l|armv6l) die "32-bit ARM ($(uname -m)): onnxruntime publishes no wheel for it; install a 64-bit OS" ;;
        *) log "warning: untested machine type $(uname -m); onnxruntime may have no wheel for it" ;;
    esac
}

board_kind() {
    local model=""
    [[ -r /proc/device-tree/model ]] && model=$(tr -d '\0' </proc/device-tree/model)
    if [[ -e /etc/nv_tegra_release || "$model" == *Jetson* || "$model" == *NVIDIA* ]]; then echo jetson
    elif [[ "$model" == *"Raspberry Pi"* ]]; then echo rpi
    else echo generic
    fi
}

install_apt_packages() {
    [[ "$APT" == yes ]] || return 0
    local pkgs=(python3 python3-venv python3-pip ca-certificates)
    # A board whose Python is too old gets a named one (e.g. --python python3.10): install its venv package too.
    [[ "$PYTHON" == python3.* ]] && pkgs+=("$PYTHON" "${PYTHON}-venv")
    log "apt-get install ${pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; } \
        || die "apt-get could not install ${pkgs[*]}; install them by hand and re-run with --no-apt"
}

check_python() {
    command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found; install Python >= 3.9 or pass --python PATH"
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
        || die "$("$PYTHON" -V 2>&1) is too old: fleetnas needs >= 3.9 (JetPack 5: apt-get install python3.9 python3.9-venv, then --python python3.9)"
    "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
        || die "$PYTHON lacks venv/ensurepip: apt-get install python3-venv (or drop --no-apt)"
}

# ---------------------------------------------------------------- install steps

create_user() {
    getent group "$POWER_GROUP" >/dev/null || groupadd --system "$POWER_GROUP"
    if ! id "$SERVICE_USER" >/dev/null 2>&1; then
        log "creating system user $SERVICE_USER"
        useradd --system --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
            --user-group "$SERVICE_USER"
    fi
    # Sensor access through groups, never root: video = /dev/vcio for Pi 5 vcgencmd; render/video = GPU delegates.
    local groups=("$POWER_GROUP") g
    for g in video render gpio i2c; do
        if getent group "$g" >/dev/null; then groups+=("$g"); fi
    done
    usermod --append --groups "$(IFS=,; echo "${groups[*]}")" "$SERVICE_USER"
    install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$STATE_DIR" "$STATE_DIR/cache"
}

venv_is_current() {
    [[ -x "$VENV/bin/python" ]] || return 1
    [[ "$("$VENV/bin/python" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" == \
       "$("$PYTHON" -c 'import sys; print(sys.version_info[:2])')" ]]
}

pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check "${PIP_EXTRA[@]}" "$@"; }

install_venv() {
    if ! venv_is_current; then
        # A new Python (OS upgrade) or a broken venv: rebuild rather than patch.
        if [[ -d "$VENV" ]]; then
            log "rebuilding $VENV for $("$PYTHON" -V 2>&1)"
            rm -rf --one-file-system "$VENV"
        fi
        install -d -m 0755 "$PREFIX"
        "$PYTHON" -m venv "$VENV"
    fi
    log "upgrading pip in $VENV"
    pip_install --quiet --upgrade pip
    log "pip install --upgrade $PACKAGE (onnxruntime included)"
    pip_install --quiet --upgrade "$PACKAGE" || die "pip could not install '$PACKAGE' (see the pip output above)"
    install_litert
    chown -R root:root "$PREFIX"
    chmod -R go-w "$PREFIX"
}

# LiteRT: ai-edge-litert where a wheel exists; tflite-runtime (needs numpy<2, last release 2.14) as the fallback.
install_litert() {
    [[ "$LITERT" == no ]] && return 0
    if pip_install --quiet --upgrade --only-binary=:all: ai-edge-litert 2>/dev/null; then
        log "LiteRT: ai-edge-litert installed"
    elif pip_install --quiet --only-binary=:all: tflite-runtime 'numpy<2' 2>/dev/null; then
        log "LiteRT: ai-edge-litert has no wheel here; installed tflite-runtime (numpy<2)"
    elif [[ "$LITERT" == yes ]]; then
        die "--litert yes: neither ai-edge-litert nor tflite-runtime has a wheel for $(uname -m) / $("$PYTHON" -V 2>&1)"
    else
        log "LiteRT: no wheel for $(uname -m) / $("$PYTHON" -V 2>&1); the agent will offer onnxruntime only"
    fi
}

# Reads KEY from an existing agent.env so that a re-run keeps the user's settings.
env_value() {
    local key=$1 file=$CONF_DIR/agent.env
    [[ -r "$file" ]] || return 0
    sed -n "s/^${key}=//p" "$file" | tail -n 1 | sed 's/^"\(.*\)"$/\1/'
}

write_config() {
    install -d -o root -g "$SERVICE_USER" -m 0750 "$CONF_DIR"
    if [[ ! -s "$CONF_DIR/token" ]]; then
        log "generating $CONF_DIR/token (copy it to the host: it is the agent's password)"
        (umask 0027 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$CONF_DIR/token")
    fi
    chown root:"$SERVICE_USER" "$CONF_DIR/token"
    chmod 0640 "$CONF_DIR/token"

    local listen quota extra tls_dir=$CONF_DIR/tls
    listen=${LISTEN:-$(env_value FLEETNAS_LISTEN)}
    quota=${CACHE_QUOTA_MB:-$(env_value FLEETNAS_CACHE_QUOTA_MB)}
    extra=$(env_value FLEETNAS_EXTRA_ARGS)
    if [[ "$TLS_CERT" == none ]]; then
        extra="" && rm -rf "$tls_dir"
    elif [[ -n "$TLS_CERT" ]]; then
        install -d -o root -g "$SERVICE_USER" -m 0750 "$tls_dir"
        install -o root -g "$SERVICE_USER" -m 0644 "$TLS_CERT" "$tls_dir/agent.crt"
        install -o root -g "$SERVICE_USER" -m 0640 "$TLS_KEY" "$tls_dir/agent.key"
        extra="--tls-cert $tls_dir/agent.crt --tls-key $tls_dir/agent.key"
        rm -f "$tls_dir/client-ca.crt"
        if [[ -n "$TLS_CLIENT_CA" ]]; then
            install -o root -g "$SERVICE_USER" -m 0644 "$TLS_CLIENT_CA" "$tls_dir/client-ca.crt"
            extra+=" --tls-client-ca $tls_dir/client-ca.crt"
        fi
    fi
    local nvp=${NVPMODEL_MODE:-$(env_value FLEETNAS_NVPMODEL_MODE)}
    (umask 0027 && cat >"$CONF_DIR/agent.env.new" <<ENV
# Written by deploy/install.sh; re-running it keeps these values unless new flags are given.
FLEETNAS_LISTEN=${listen:-0.0.0.0:50051}
FLEETNAS_CACHE_QUOTA_MB=${quota:-2048}
FLEETNAS_EXTRA_ARGS="${extra}"
FLEETNAS_NVPMODEL_MODE=${nvp}
ENV
    )
    chown root:"$SERVICE_USER" "$CONF_DIR/agent.env.new"
    mv -f "$CONF_DIR/agent.env.new" "$CONF_DIR/agent.env"
}

install_unit_files() {
    install -m 0644 "$SCRIPT_DIR/systemd/fleetnas-agent.service" "$UNIT_DIR/fleetnas-agent.service"
    install -D -m 0644 "$SCRIPT_DIR/udev/60-fleetnas-power.rules" "$UDEV_RULE"
    if [[ "$(board_kind)" == jetson ]]; then
        install -m 0644 "$SCRIPT_DIR/systemd/fleetnas-fixed-clocks.service" "$UNIT_DIR/fleetnas-fixed-clocks.service"
    fi
    # Apply the rule now too: udev only runs it on the next add/change event (or boot).
    local f
    for f in /sys/class/powercap/*/energy_uj; do
        [[ -e "$f" ]] || continue
        { chgrp "$POWER_GROUP" "$f" && chmod g+r "$f"; } 2>/dev/null || true
    done
    if command -v udevadm >/dev/null && [[ -d /run/udev ]]; then
        udevadm control --reload-rules 2>/dev/null || true
    fi
}

systemd_running() { [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; }

start_service() {
    if [[ "$START" == no ]] || ! systemd_running; then
        log "not starting the service (--no-start, or systemd is not running here)."
        log "start it by hand: runuser -u $SERVICE_USER -- $VENV/bin/fleetnas-agent serve --listen HOST:PORT --token-file $CONF_DIR/token --cache-dir $STATE_DIR/cache"
        return 0
    fi
    systemctl daemon-reload
    if [[ -n "$(env_value FLEETNAS_NVPMODEL_MODE)" ]]; then
        systemctl enable --now fleetnas-fixed-clocks.service
    elif [[ -e "$UNIT_DIR/fleetnas-fixed-clocks.service" ]]; then
        systemctl disable --now fleetnas-fixed-clocks.service 2>/dev/null || true
    fi
    systemctl enable fleetnas-agent.service
    systemctl restart fleetnas-agent.service   # restart, not start: an upgrade must load the new code
    sleep 2
    systemctl is-active --quiet fleetnas-agent.service \
        || die "fleetnas-agent.service did not stay up: journalctl -u fleetnas-agent -n 50"
    log "fleetnas-agent.service is running on $(env_value FLEETNAS_LISTEN)"
}

run_selftest() {
    [[ "$SELFTEST" == yes ]] || return 0
    log "fleetnas-agent selftest (as $SERVICE_USER)"
    (cd / && runuser -u "$SERVICE_USER" -- "$VENV/bin/fleetnas-agent" selftest) \
        || die "selftest failed: the agent is installed but cannot measure; see the output above"
}

# ---------------------------------------------------------------- uninstall

uninstall() {
    [[ $EUID -eq 0 ]] || die "run as root (sudo $0 --uninstall)"
    if systemd_running; then
        systemctl disable --now fleetnas-agent.service fleetnas-fixed-clocks.service 2>/dev/null || true
    fi
    rm -f "$UNIT_DIR/fleetnas-agent.service" "$UNIT_DIR/fleetnas-fixed-clocks.service" "$UDEV_RULE"
    if systemd_running; then systemctl daemon-reload; fi
    rm -rf --one-file-system "$PREFIX"
    log "removed the service, the udev rule and $PREFIX"
    if [[ "$PURGE" == yes ]]; then
        rm -rf --one-file-system "$CONF_DIR" "$STATE_DIR" /var/lib/fleetnas-clocks
        if id "$SERVICE_USER" >/dev/null 2>&1; then userdel "$SERVICE_USER"; fi
        if getent group "$SERVICE_USER" >/dev/null; then groupdel "$SERVICE_USER"; fi
        if getent group "$POWER_GROUP" >/dev/null; then groupdel "$POWER_GROUP"; fi
        log "purged $CONF_DIR, $STATE_DIR and the user $SERVICE_USER"
    else
        log "kept $CONF_DIR (token, settings), $STATE_DIR (cache) and the user; --purge removes them"
    fi
}

main() {
    parse_args "$@"
    if [[ "$UNINSTALL" == yes ]]; then uninstall; return; fi
    [[ "$PURGE" == no ]] || die "--purge only goes with --uninstall"
    check_system
    log "board: $(board_kind), $(uname -m)"
    if [[ -n "$NVPMODEL_MODE" && "$(board_kind)" != jetson ]]; then
        die "--jetson-fixed-clocks is for NVIDIA Jetson boards; this one is '$(board_kind)'"
    fi
    install_apt_packages
    check_python
    create_user
    install_venv
    write_config
    install_unit_files
    start_service
    run_selftest
    log "done. Token: $CONF_DIR/token. This board: runuser -u $SERVICE_USER -- $VENV/bin/fleetnas-agent info --cache-dir $STATE_DIR/cache"
    log "from the host: fleetnas devices check --devices devices.toml"
}

main "$@"
