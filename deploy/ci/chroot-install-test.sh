#!/usr/bin/env bash
# End-to-end check of deploy/install.sh in a clean Debian root made with debootstrap:
#   debootstrap (or unpack a cached base) -> copy this checkout into the root -> its install.sh with no source
#   option, as a newcomer runs it (builds a wheel of the checkout; apt packages, user, venv, token, unit, udev rule,
#   `fleetnas-agent selftest` as the service user) -> re-run with --wheel built on the host (upgrade in place keeps
#   the token and settings) -> install.sh --uninstall --purge leaves nothing behind.
#
#   sudo deploy/ci/chroot-install-test.sh [--suite bookworm] [--arch amd64|arm64] [--base-cache DIR] [--wheel F] [--keep]
#
# Needs root, debootstrap and network access to a Debian mirror and to PyPI. arm64 runs under qemu-user and needs
# qemu-user-static registered in binfmt_misc; without it the script exits 77 (skipped). Mounts live in a private
# mount namespace (unshare -m), so nothing stays mounted on the host if the script dies.
# Exit status: 0 passed, 1 a check failed, 2 bad usage, 77 skipped (a prerequisite is missing).
set -euo pipefail

SUITE=bookworm
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
MIRROR=${FLEETNAS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_CACHE=""
KEEP=no
WHEEL=""
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/chroot-lib.sh"
# shellcheck source=chroot-lib.sh
source "$LIB"

log() { printf '[chroot-install-test] %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; exit 77; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --suite) SUITE=$2; shift ;;
        --arch) ARCH=$2; shift ;;
        --mirror) MIRROR=$2; shift ;;
        --base-cache) BASE_CACHE=$2; shift ;;
        --wheel) WHEEL=$2; shift ;;
        --keep) KEEP=yes ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) printf 'error: unknown option %s\n' "$1" >&2; exit 2 ;;
    esac
    shift
done

chroot_prerequisites "$ARCH"

make_workdir fleetnas-chroot

# ---------------------------------------------------------------- a clean Debian root with the checkout in it
make_root "$ROOT" "$SUITE" "$ARCH" "$MIRROR" "$BASE_CACHE"
copy_checkout "$REPO" "$ROOT/tmp/fleetnas/checkout"

# ---------------------------------------------------------------- the wheel for the upgrade run (built on the host)
if [[ -z "$WHEEL" ]]; then
    log "building a wheel on the host (for the --wheel upgrade)"
    copy_checkout "$REPO" "$WORK/src"
    # Without build isolation when this Python has setuptools >= 69 (no download), else pip fetches it.
    python3 -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" >/dev/null 2>&1 \
        || python3 -m pip wheel --quiet --no-deps -w "$WORK/dist" "$WORK/src" >/dev/null 2>&1 \
        || fail "could not build a wheel from $REPO"
    WHEEL=$(echo "$WORK"/dist/fleetnas-*.whl)
fi
[[ -f "$WHEEL" ]] || fail "wheel '$WHEEL' not found"
cp "$WHEEL" "$ROOT/tmp/fleetnas/"
CHROOT_WHEEL=/tmp/fleetnas/$(basename "$WHEEL")

# Runs the checks inside a private mount namespace: /proc, /sys (read-only) and /dev exist only for it.
export ROOT CHROOT_WHEEL LIB ARCH
unshare --mount --propagation private bash -euo pipefail <<'INNER' || fail "see the output above"
log() { printf '[chroot-install-test] %s\n' "$*"; }
# shellcheck source=chroot-lib.sh
source "$LIB"
mount_root "$ROOT" "$ARCH"

log "install.sh from the checkout, no source option (first install, selftest as the service user)"
in_root bash /tmp/fleetnas/checkout/deploy/install.sh --listen 127.0.0.1:50051 | tee "$ROOT/tmp/install.log"
grep -q "building a wheel of /tmp/fleetnas/checkout" "$ROOT/tmp/install.log" \
    || { echo "install.sh did not build the checkout"; exit 1; }
token1=$(in_root cat /etc/fleetnas/token)
[[ ${#token1} -ge 40 ]] || { echo "token too short: ${#token1} chars"; exit 1; }
in_root test -f /etc/systemd/system/fleetnas-agent.service
in_root test -f /etc/udev/rules.d/60-fleetnas-power.rules
in_root id -nG fleetnas | grep -qw fleetnas-power
[[ "$(in_root stat -c '%U:%G %a' /etc/fleetnas/token)" == "root:fleetnas 640" ]] || { echo "token permissions"; exit 1; }
if in_root runuser -u fleetnas -- touch /opt/fleetnas/venv/bin/x 2>/dev/null; then
    echo "the service user can write its own venv"; exit 1
fi
in_root runuser -u fleetnas -- /opt/fleetnas/venv/bin/fleetnas-agent info --json >/dev/null

# No systemd runs as PID 1 in a chroot: for the service steps, a systemctl on PATH records what it was asked.
in_root mkdir -p /run/systemd/system
in_root sh -c 'printf "#!/bin/sh\necho \"\$*\" >>/tmp/systemctl.log\n" >/usr/local/sbin/systemctl'
in_root chmod 0755 /usr/local/sbin/systemctl
expect_systemctl() {
    in_root grep -qxF "$1" /tmp/systemctl.log || { echo "install.sh never ran: systemctl $1"; exit 1; }
}

log "install.sh --wheel again (upgrade in place: token and settings kept, service enabled and restarted)"
in_root bash /tmp/fleetnas/checkout/deploy/install.sh --wheel "$CHROOT_WHEEL" --no-apt --no-selftest
[[ "$(in_root cat /etc/fleetnas/token)" == "$token1" ]] || { echo "re-run changed the token"; exit 1; }
in_root grep -qx 'FLEETNAS_LISTEN=127.0.0.1:50051' /etc/fleetnas/agent.env \
    || { echo "re-run lost --listen"; exit 1; }
expect_systemctl "daemon-reload"
expect_systemctl "enable fleetnas-agent.service"
expect_systemctl "restart fleetnas-agent.service"
expect_systemctl "is-active --quiet fleetnas-agent.service"

log "install.sh --uninstall --purge"
in_root bash /tmp/fleetnas/checkout/deploy/install.sh --uninstall --purge
expect_systemctl "disable --now fleetnas-agent.service fleetnas-fixed-clocks.service"
in_root rm -rf /run/systemd/system /usr/local/sbin/systemctl /tmp/systemctl.log
for p in /opt/fleetnas /etc/fleetnas /var/lib/fleetnas /etc/systemd/system/fleetnas-agent.service \
         /etc/udev/rules.d/60-fleetnas-power.rules; do
    if in_root test -e "$p"; then echo "uninstall left $p"; exit 1; fi
done
if in_root id fleetnas >/dev/null 2>&1; then echo "uninstall --purge left the user"; exit 1; fi
INNER

log "PASSED: install, selftest, upgrade and uninstall in a clean $SUITE/$ARCH root"
