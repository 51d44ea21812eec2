#!/bin/bash
# Runs inside the arm64 VM of arm64-vm-test.sh (started by the image's /sbin/fleetnas-ci-init, as PID 1) from the
# data disk mounted at /mnt/fleetnas: network, deploy/install.sh offline from the wheels on the disk, the versions
# of what it installed, `fleetnas-agent selftest`, then the agent serving until the host stops the VM.
# The host reads the serial console: lines starting "FLEETNAS-VM " are for it. Not meant to run anywhere else.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PYTHONUNBUFFERED=1
DATA=/mnt/fleetnas
# shellcheck source=/dev/null
source "$DATA/vm.env"   # AGENT_PORT (the guest side of the forwarded port)

say() { printf 'FLEETNAS-VM %s\n' "$*"; }
power_off() {
    sync
    echo 1 >/proc/sys/kernel/sysrq
    echo o >/proc/sysrq-trigger
    sleep 30
}
die() { say "FAILED $*"; power_off; }

started=$(date +%s)
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
hostname fleetnas-arm64

# QEMU user-mode networking, configured by hand: no DHCP client or udev runs in this minimal guest.
modprobe virtio_net 2>/dev/null
for _ in $(seq 1 20); do ip link show eth0 >/dev/null 2>&1 && break; sleep 0.5; done
ip link set lo up
if ! { ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2; }; then
    die "no network device eth0 in the guest"
fi

say "uname $(uname -srm)"
say "cpu $(grep -m1 '^Features' /proc/cpuinfo | sed 's/^Features\s*:\s*//') ($(nproc) CPUs)"

# The host chose the token: placed first, install.sh keeps it (it only generates one when none exists).
install -d -m 0755 /etc/fleetnas
install -m 0640 "$DATA/token" /etc/fleetnas/token
cp -a "$DATA/checkout" /tmp/checkout
wheels=("$DATA"/fleetnas-*.whl)
wheel=${wheels[0]}
t=$(date +%s)
# Its selftest is run below instead, to report its output and time on their own.
bash /tmp/checkout/deploy/install.sh --wheel "$wheel" --find-links "$DATA/wheels" --no-index --no-apt --no-selftest \
    --listen "0.0.0.0:$AGENT_PORT" || die "deploy/install.sh failed"
say "install_s $(( $(date +%s) - t ))"

venv=/opt/fleetnas/venv
"$venv/bin/python" - <<'PY' | sed 's/^/FLEETNAS-VM version /'
import importlib.metadata as md
for dist in ("fleetnas", "onnxruntime", "ai-edge-litert", "numpy", "grpcio", "protobuf"):
    try:
        print(dist, md.version(dist))
    except md.PackageNotFoundError:
        print(dist, "missing")
PY
say "python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"

t=$(date +%s)
runuser -u fleetnas -- "$venv/bin/fleetnas-agent" selftest 2>&1 | sed 's/^/FLEETNAS-VM selftest| /'
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "fleetnas-agent selftest failed"
say "selftest_s $(( $(date +%s) - t ))"
say "ready_s $(( $(date +%s) - started ))"

# Served in the foreground as the service user; the host powers the VM off (the root disk is a throwaway snapshot).
runuser -u fleetnas -- "$venv/bin/fleetnas-agent" serve --listen "0.0.0.0:$AGENT_PORT" \
    --token-file /etc/fleetnas/token --cache-dir /var/lib/fleetnas/cache
die "the agent stopped serving (exit $?)"
