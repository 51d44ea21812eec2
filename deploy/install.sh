#!/usr/bin/env bash
# Install, upgrade or remove the fleetnas agent on a Debian-family board (Raspberry Pi OS, JetPack, Debian, Ubuntu).
#
#   sudo deploy/install.sh                             # from this checkout (builds a wheel), start the service
#   sudo ./install.sh --wheel fleetnas-0.1.0-py3-none-any.whl [--find-links wheels/ --no-index]   # offline board
#   deploy/install.sh --prefix ~/fleetnas              # no root: venv, token and cache under one folder, no service
#   sudo ./install.sh --uninstall [--purge]
#
# What it sets up (as root): a system user `fleetnas`, a venv at /opt/fleetnas/venv (owned by root: the service cannot
# rewrite its own code), /etc/fleetnas/{agent.env,token,tls/}, /var/lib/fleetnas (model cache), the hardened unit
# fleetnas-agent.service and a udev rule that lets the group fleetnas-power read RAPL energy counters.
# Re-running it upgrades in place: the token and the settings in agent.env are kept unless new flags are given.
set -euo pipefail

readonly SERVICE_USER=fleetnas
readonly POWER_GROUP=fleetnas-power
readonly UNIT_DIR=/etc/systemd/system
readonly UDEV_RULE=/etc/udev/rules.d/60-fleetnas-power.rules
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# The system layout; --prefix DIR moves all of it under DIR (see set_layout).
PREFIX=/opt/fleetnas
VENV=${PREFIX}/venv
CONF_DIR=/etc/fleetnas
STATE_DIR=/var/lib/fleetnas

PACKAGE=""
WHEEL=""
USER_PREFIX=""
CHECKOUT=""
BUILD_DIR=""
PYTHON=python3
LITERT=auto
LISTEN=""
CONNECT=""
CONNECT_NAME=""
CONNECT_TLS_CA=""
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
  (default)               run from a checkout: build a wheel of it (pip wheel --no-deps) and install that
  --wheel FILE            install this fleetnas wheel (built on the host: pip wheel . --no-deps -w dist/)
  --package SPEC          what pip installs instead: a name/version (fleetnas==0.1.0), a wheel, an sdist or a URL
  --find-links DIR        also take wheels from DIR (the dependencies downloaded for an offline board)
  --no-index              do not contact the package index: everything comes from --find-links
  --prefix DIR            install for the current user under DIR (venv, token, settings, cache), without root,
                          service user, systemd unit or udev rule; prints how to start the agent
  --python PATH           interpreter for the venv, >= 3.9 (default: python3)
  --listen HOST:PORT      address the agent serves on (default 0.0.0.0:50051, token required)
  --connect HOST:PORT     dial-out mode, for a board the host cannot reach (NAT, firewall, mobile network): the
                          agent connects to the host's hub (fleetnas search|hub --listen HOST:PORT) instead of
                          listening; runs fleetnas-agent-connect.service. --no-connect goes back to listening
  --name NAME             with --connect: this board's name in the host's devices.toml (default: the host name)
  --connect-tls-ca F      with --connect: verify the hub's TLS certificate with this CA (copied to /etc/fleetnas/tls)
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
            --wheel) need_arg "$@"; WHEEL=$2; shift ;;
            --find-links) need_arg "$@"; [[ -d "$2" ]] || die "--find-links: '$2' is not a directory"
                          PIP_EXTRA+=(--find-links "$(cd "$2" && pwd)"); shift ;;
            --no-index) PIP_EXTRA+=(--no-index) ;;
            --prefix) need_arg "$@"; USER_PREFIX=$2; shift ;;
            --python) need_arg "$@"; PYTHON=$2; shift ;;
            --listen) need_arg "$@"; LISTEN=$2; shift ;;
            --connect) need_arg "$@"; CONNECT=$2; shift ;;
            --no-connect) CONNECT=none ;;
            --name) need_arg "$@"; CONNECT_NAME=$2; shift ;;
            --connect-tls-ca) need_arg "$@"; CONNECT_TLS_CA=$2; shift ;;
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
    [[ -z "$WHEEL" || -z "$PACKAGE" ]] || die "--wheel and --package both name what to install: give one"
    if [[ -n "$WHEEL" ]]; then
        [[ "$WHEEL" == *.whl ]] || die "--wheel takes a .whl file (pip wheel . --no-deps -w dist/), got '$WHEEL'"
        [[ -f "$WHEEL" && -r "$WHEEL" ]] || die "--wheel: '$WHEEL' does not exist or is not readable"
        WHEEL="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
    fi
    if [[ -n "$USER_PREFIX" ]]; then
        [[ -n "$NVPMODEL_MODE" ]] && die "--jetson-fixed-clocks needs a system install (no --prefix)"
    fi
    if [[ -n "$LISTEN" && ! "$LISTEN" =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$ ]]; then
        die "--listen must be HOST:PORT (e.g. 0.0.0.0:50051 or [::]:50051), got '$LISTEN'"
    fi
    if [[ -n "$CONNECT" && "$CONNECT" != none && ! "$CONNECT" =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$ ]]; then
        die "--connect must be the host's HOST:PORT (e.g. nas-host.example.org:50052), got '$CONNECT'"
    fi
    if [[ -n "$CONNECT_NAME" && ! "$CONNECT_NAME" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
        die "--name may hold only letters, digits, '.', '_' and '-', got '$CONNECT_NAME'"
    fi
    if [[ -n "$CONNECT_TLS_CA" && ! -r "$CONNECT_TLS_CA" ]]; then
        die "--connect-tls-ca: '$CONNECT_TLS_CA' does not exist or is not readable"
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

# ---------------------------------------------------------------- layout and source

# --prefix DIR: the same layout under one folder the current user owns.
set_layout() {
    [[ -n "$USER_PREFIX" ]] || return 0
    mkdir -p "$USER_PREFIX" || die "--prefix: cannot create '$USER_PREFIX'"
    PREFIX="$(cd "$USER_PREFIX" && pwd)"
    VENV=$PREFIX/venv
    CONF_DIR=$PREFIX/etc
    STATE_DIR=$PREFIX/var
    APT=no
}

user_install() { [[ -n "$USER_PREFIX" ]]; }

# What pip installs: --wheel, --package, or (default) a wheel built from the checkout this script sits in.
choose_source() {
    if [[ -n "$WHEEL" ]]; then PACKAGE=$WHEEL; return 0; fi
    [[ -n "$PACKAGE" ]] && return 0
    local root
    root="$(cd "$SCRIPT_DIR/.." && pwd)"
    if [[ -f "$root/pyproject.toml" ]] && grep -q '^name = "fleetnas"' "$root/pyproject.toml"; then
        CHECKOUT=$root
        return 0
    fi
    die "this install.sh is not inside a fleetnas checkout: build a wheel on the host (pip wheel . --no-deps -w dist/) and pass --wheel FILE, or pass --package SPEC"
}

# Builds the checkout's wheel from a copy, so that running as root leaves no root-owned build/ or *.egg-info in
# the user's checkout. Tracked and new (not ignored) files are copied where git is available, else all but the
# usual build and cache folders.
build_checkout_wheel() {
    BUILD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fleetnas-build.XXXXXX")
    mkdir "$BUILD_DIR/src"
    if [[ -e "$CHECKOUT/.git" ]] && command -v git >/dev/null \
        && git -c safe.directory="$CHECKOUT" -C "$CHECKOUT" ls-files -z --cached --others --exclude-standard \
            >"$BUILD_DIR/files" 2>/dev/null; then
        tar -C "$CHECKOUT" --null --files-from="$BUILD_DIR/files" --ignore-failed-read -cf - 2>/dev/null \
            | tar -C "$BUILD_DIR/src" -xf -
    else
        tar -C "$CHECKOUT" --exclude=.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
            --exclude=__pycache__ --exclude=./.venv --exclude=./venv --exclude=./runs -cf - . \
            | tar -C "$BUILD_DIR/src" -xf -
    fi
    log "building a wheel of $CHECKOUT"
    # The build's own chatter (setuptools deprecation notices) goes to a log, shown only when the build fails.
    if ! "$VENV/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps "${PIP_EXTRA[@]}" \
            -w "$BUILD_DIR/dist" "$BUILD_DIR/src" >"$BUILD_DIR/build.log" 2>&1; then
        tail -n 25 "$BUILD_DIR/build.log" >&2
        die "could not build a wheel of $CHECKOUT (pip needs setuptools>=69 from the index or --find-links; see above)"
    fi
    PACKAGE=$(echo "$BUILD_DIR"/dist/fleetnas-*.whl)
    [[ -f "$PACKAGE" ]] || die "pip built no fleetnas wheel in $BUILD_DIR/dist"
}

remove_build_dir() { if [[ -n "$BUILD_DIR" ]]; then rm -rf --one-file-system "$BUILD_DIR"; fi; }

# ---------------------------------------------------------------- checks

check_system() {
    if user_install; then
        [[ "$(uname -s)" == Linux ]] || die "fleetnas-agent runs on Linux; this is $(uname -s)"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "run as root (sudo $0 ...): it creates a system user and a systemd unit; without root: --prefix DIR"
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
    if user_install; then
        install -d -m 0750 "$STATE_DIR" "$STATE_DIR/cache"
        return 0
    fi
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
    pip_install --quiet --upgrade pip 2>/dev/null || log "pip not upgraded (offline?); going on with $("$VENV/bin/python" -m pip --version | cut -d' ' -f1-2)"
    [[ -z "$CHECKOUT" ]] || build_checkout_wheel
    if [[ -f "$PACKAGE" ]]; then
        # A file keeps its version number from build to build: replace the installed copy, or pip would keep it.
        "$VENV/bin/python" -m pip uninstall --quiet --yes fleetnas >/dev/null 2>&1 || true
    fi
    log "pip install --upgrade $PACKAGE (grpcio, protobuf, numpy, onnxruntime included)"
    pip_install --quiet --upgrade "$PACKAGE" || die "pip could not install '$PACKAGE' (see the pip output above)"
    remove_build_dir
    install_litert
    if ! user_install; then
        chown -R root:root "$PREFIX"
        chmod -R go-w "$PREFIX"
    fi
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

# Config files: root-owned and readable by the service's group; in a --prefix install simply the user's.
own_root_group() { user_install || chown root:"$SERVICE_USER" "$@"; }
conf_install() {
    if user_install; then install "$@"; else install -o root -g "$SERVICE_USER" "$@"; fi
}

write_config() {
    conf_install -d -m 0750 "$CONF_DIR"
    if [[ ! -s "$CONF_DIR/token" ]]; then
        log "generating $CONF_DIR/token (copy it to the host: it is the agent's password)"
        (umask 0027 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$CONF_DIR/token")
    fi
    own_root_group "$CONF_DIR/token"
    chmod 0640 "$CONF_DIR/token"

    local listen quota extra tls_dir=$CONF_DIR/tls
    listen=${LISTEN:-$(env_value FLEETNAS_LISTEN)}
    quota=${CACHE_QUOTA_MB:-$(env_value FLEETNAS_CACHE_QUOTA_MB)}
    extra=$(env_value FLEETNAS_EXTRA_ARGS)
    if [[ "$TLS_CERT" == none ]]; then
        extra="" && rm -rf "$tls_dir"
    elif [[ -n "$TLS_CERT" ]]; then
        conf_install -d -m 0750 "$tls_dir"
        conf_install -m 0644 "$TLS_CERT" "$tls_dir/agent.crt"
        conf_install -m 0640 "$TLS_KEY" "$tls_dir/agent.key"
        extra="--tls-cert $tls_dir/agent.crt --tls-key $tls_dir/agent.key"
        rm -f "$tls_dir/client-ca.crt"
        if [[ -n "$TLS_CLIENT_CA" ]]; then
            conf_install -m 0644 "$TLS_CLIENT_CA" "$tls_dir/client-ca.crt"
            extra+=" --tls-client-ca $tls_dir/client-ca.crt"
        fi
    fi
    local nvp=${NVPMODEL_MODE:-$(env_value FLEETNAS_NVPMODEL_MODE)}
    local connect name connect_args
    connect=${CONNECT:-$(env_value FLEETNAS_CONNECT)}
    [[ "$connect" != none ]] || connect=""
    name=${CONNECT_NAME:-$(env_value FLEETNAS_NAME)}
    name=${name:-$(hostname -s 2>/dev/null || echo board)}
    connect_args=$(env_value FLEETNAS_CONNECT_ARGS)
    if [[ -n "$CONNECT_TLS_CA" ]]; then
        conf_install -d -m 0750 "$tls_dir"
        conf_install -m 0644 "$CONNECT_TLS_CA" "$tls_dir/hub-ca.crt"
        connect_args="--tls-ca $tls_dir/hub-ca.crt"
    fi
    (umask 0027 && cat >"$CONF_DIR/agent.env.new" <<ENV
# Written by deploy/install.sh; re-running it keeps these values unless new flags are given.
FLEETNAS_LISTEN=${listen:-0.0.0.0:50051}
FLEETNAS_CACHE_QUOTA_MB=${quota:-2048}
FLEETNAS_EXTRA_ARGS="${extra}"
FLEETNAS_NVPMODEL_MODE=${nvp}
# Dial-out mode (fleetnas-agent-connect.service) when FLEETNAS_CONNECT is set: the host's hub address.
FLEETNAS_CONNECT=${connect}
FLEETNAS_NAME=${name}
FLEETNAS_CONNECT_ARGS="${connect_args}"
ENV
    )
    own_root_group "$CONF_DIR/agent.env.new"
    mv -f "$CONF_DIR/agent.env.new" "$CONF_DIR/agent.env"
}

install_unit_files() {
    user_install && return 0
    install -m 0644 "$SCRIPT_DIR/systemd/fleetnas-agent.service" "$UNIT_DIR/fleetnas-agent.service"
    install -m 0644 "$SCRIPT_DIR/systemd/fleetnas-agent-connect.service" "$UNIT_DIR/fleetnas-agent-connect.service"
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

# The command that runs the agent in the foreground with the installed settings.
serve_command() {
    local as_user="runuser -u $SERVICE_USER -- " extra
    user_install && as_user=""
    if [[ -n "$(env_value FLEETNAS_CONNECT)" ]]; then
        printf '%s%s connect %s --name %s --token-file %s --cache-dir %s --cache-quota-mb %s' "$as_user" \
            "$VENV/bin/fleetnas-agent" "$(env_value FLEETNAS_CONNECT)" "$(env_value FLEETNAS_NAME)" "$CONF_DIR/token" \
            "$STATE_DIR/cache" "$(env_value FLEETNAS_CACHE_QUOTA_MB)"
        extra=$(env_value FLEETNAS_CONNECT_ARGS)
        [[ -z "$extra" ]] || printf ' %s' "$extra"
        printf '\n'
        return 0
    fi
    printf '%s%s serve --listen %s --token-file %s --cache-dir %s --cache-quota-mb %s' "$as_user" \
        "$VENV/bin/fleetnas-agent" "$(env_value FLEETNAS_LISTEN)" "$CONF_DIR/token" "$STATE_DIR/cache" \
        "$(env_value FLEETNAS_CACHE_QUOTA_MB)"
    extra=$(env_value FLEETNAS_EXTRA_ARGS)
    [[ -z "$extra" ]] || printf ' %s' "$extra"
    printf '\n'
}

start_service() {
    if user_install; then
        log "installed under $PREFIX (no service). Start the agent: $(serve_command)"
        return 0
    fi
    if [[ "$START" == no ]] || ! systemd_running; then
        log "not starting the service (--no-start, or systemd is not running here)."
        log "start it by hand: $(serve_command)"
        return 0
    fi
    systemctl daemon-reload
    if [[ -n "$(env_value FLEETNAS_NVPMODEL_MODE)" ]]; then
        systemctl enable --now fleetnas-fixed-clocks.service
    elif [[ -e "$UNIT_DIR/fleetnas-fixed-clocks.service" ]]; then
        systemctl disable --now fleetnas-fixed-clocks.service 2>/dev/null || true
    fi
    local unit=fleetnas-agent.service other=fleetnas-agent-connect.service where
    where="on $(env_value FLEETNAS_LISTEN)"
    if [[ -n "$(env_value FLEETNAS_CONNECT)" ]]; then
        unit=fleetnas-agent-connect.service other=fleetnas-agent.service
        where="dialling $(env_value FLEETNAS_CONNECT) as $(env_value FLEETNAS_NAME)"
    fi
    systemctl disable --now "$other" 2>/dev/null || true
    systemctl enable "$unit"
    systemctl restart "$unit"   # restart, not start: an upgrade must load the new code
    sleep 2
    systemctl is-active --quiet "$unit" \
        || die "$unit did not stay up: journalctl -u ${unit%.service} -n 50"
    log "$unit is running $where"
}

run_selftest() {
    [[ "$SELFTEST" == yes ]] || return 0
    if user_install; then
        log "fleetnas-agent selftest"
        (cd / && "$VENV/bin/fleetnas-agent" selftest) \
            || die "selftest failed: the agent is installed but cannot measure; see the output above"
        return 0
    fi
    log "fleetnas-agent selftest (as $SERVICE_USER)"
    (cd / && runuser -u "$SERVICE_USER" -- "$VENV/bin/fleetnas-agent" selftest) \
        || die "selftest failed: the agent is installed but cannot measure; see the output above"
}

# ---------------------------------------------------------------- uninstall

uninstall() {
    if user_install; then
        rm -rf --one-file-system "$VENV"
        log "removed $VENV"
        if [[ "$PURGE" == yes ]]; then
            rm -rf --one-file-system "$CONF_DIR" "$STATE_DIR"
            rmdir "$PREFIX" 2>/dev/null || true
            log "purged $CONF_DIR and $STATE_DIR"
        fi
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "run as root (sudo $0 --uninstall)"
    if systemd_running; then
        systemctl disable --now fleetnas-agent.service fleetnas-agent-connect.service fleetnas-fixed-clocks.service \
            2>/dev/null || true
    fi
    rm -f "$UNIT_DIR/fleetnas-agent.service" "$UNIT_DIR/fleetnas-agent-connect.service" \
        "$UNIT_DIR/fleetnas-fixed-clocks.service" "$UDEV_RULE"
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
    set_layout
    if [[ "$UNINSTALL" == yes ]]; then uninstall; return; fi
    [[ "$PURGE" == no ]] || die "--purge only goes with --uninstall"
    check_system
    choose_source
    trap remove_build_dir EXIT
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
    if user_install; then
        log "done. Token: $CONF_DIR/token. This board: $VENV/bin/fleetnas-agent info --cache-dir $STATE_DIR/cache"
    else
        log "done. Token: $CONF_DIR/token. This board: runuser -u $SERVICE_USER -- $VENV/bin/fleetnas-agent info --cache-dir $STATE_DIR/cache"
    fi
    if [[ -n "$(env_value FLEETNAS_CONNECT)" ]]; then
        log "on the host: a [[device]] with name = \"$(env_value FLEETNAS_NAME)\", address = \"dial-in\" and this token as its token_file; then: fleetnas devices check --devices devices.toml --listen HOST:PORT"
    else
        log "from the host: fleetnas devices check --devices devices.toml"
    fi
}

main "$@"
