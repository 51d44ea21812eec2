#!/usr/bin/env bash
# A board stand-in for end-to-end tests: a clean Debian root (debootstrap), this checkout copied into it, its own
# deploy/install.sh run there with no source option (as a newcomer runs it on a board), then the installed agent
# served in the foreground as the service user until the script is stopped (SIGTERM or Ctrl-C).
#
#   sudo deploy/ci/chroot-agent.sh [--listen 127.0.0.1:0] [--token-out FILE] [--base-cache DIR] [--keep] [-- INSTALL_ARGS]
#
# The root shares this machine's network: the agent's line "serving on HOST:PORT" names the address to dial from
# the host; --token-out copies the generated token to FILE (0600). Needs root, debootstrap, unshare and access to a
# Debian mirror and the package index. Exit status: 77 skipped (a prerequisite is missing), 1 failed, 2 bad usage.
set -euo pipefail

SUITE=bookworm
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
MIRROR=${FLEETNAS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_CACHE=""
KEEP=no
LISTEN=127.0.0.1:0
TOKEN_OUT=""
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/chroot-lib.sh"

log() { printf '[chroot-agent] %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; exit 77; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
# shellcheck source=chroot-lib.sh
source "$LIB"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --suite) SUITE=$2; shift ;;
        --mirror) MIRROR=$2; shift ;;
        --base-cache) BASE_CACHE=$2; shift ;;
        --listen) LISTEN=$2; shift ;;
        --token-out) TOKEN_OUT=$2; shift ;;
        --keep) KEEP=yes ;;
        --) shift; break ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) printf 'error: unknown option %s\n' "$1" >&2; exit 2 ;;
    esac
    shift
done

chroot_prerequisites "$ARCH"
make_workdir fleetnas-chroot-agent
trap 'exit 143' TERM
trap 'exit 130' INT

make_root "$ROOT" "$SUITE" "$ARCH" "$MIRROR" "$BASE_CACHE"
copy_checkout "$REPO" "$ROOT/tmp/fleetnas/checkout"

export ROOT LIB LISTEN TOKEN_OUT
unshare --mount --propagation private bash -euo pipefail -s -- "$@" <<'INNER' || fail "see the output above"
log() { printf '[chroot-agent] %s\n' "$*"; }
# shellcheck source=chroot-lib.sh
source "$LIB"
mount_root "$ROOT"
log "deploy/install.sh from the checkout in the root ($*)"
in_root bash /tmp/fleetnas/checkout/deploy/install.sh --listen "$LISTEN" "$@"
if [[ -n "$TOKEN_OUT" ]]; then
    install -m 0600 "$ROOT/etc/fleetnas/token" "$TOKEN_OUT"
    log "token copied to $TOKEN_OUT"
fi
log "serving as the service user until stopped"
in_root runuser -u fleetnas -- /opt/fleetnas/venv/bin/fleetnas-agent serve --listen "$LISTEN" \
    --token-file /etc/fleetnas/token --cache-dir /var/lib/fleetnas/cache
INNER
