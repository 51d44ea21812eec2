#!/usr/bin/env bash
# The agent on arm64 for real, on an x86 machine: a Debian arm64 VM (Debian's arm64 kernel, booted in
# qemu-system-aarch64 -M virt -cpu cortex-a72, no KVM) installs a wheel built from this checkout with its own
# deploy/install.sh, offline (the aarch64 wheels are downloaded here first, as for an offline board), runs
# `fleetnas-agent selftest` and serves on a forwarded port; from this host, `fleetnas devices check` and a short
# `fleetnas search --supernet tiny` measure on it.
#
#   sudo deploy/ci/arm64-vm-test.sh [--python PY] [--budget 6] [--out DIR] [--cache /var/cache/fleetnas-arm64]
#
# PY is the host's Python with fleetnas[host] installed (default python3). The VM image comes from
# arm64-vm-image.sh (built on first use: 20 minutes here; cached afterwards). With a cached image a run took
# 575 s here on 2 busy cores: boot, install and selftest 389 s (mostly pip in the emulated guest), devices check 8 s,
# tiny search 152 s. --out keeps the console log, devices.toml and the search results. Exit status: 0 passed, 1 a check failed, 2 bad usage, 77 skipped (not
# root, no qemu-system-aarch64, no network, or no host install).
set -euo pipefail

CACHE=${FLEETNAS_ARM64_CACHE:-/var/cache/fleetnas-arm64}
PYTHON=python3
BUDGET=6
OUT=""
BOOT_TIMEOUT_S=1500
AGENT_PORT=50051
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

log() { printf '[arm64-vm-test] %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; exit 77; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
# shellcheck source=chroot-lib.sh
source "$HERE/chroot-lib.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --python) PYTHON=$2; shift ;;
        --budget) BUDGET=$2; shift ;;
        --out) OUT=$2; shift ;;
        --cache) CACHE=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) printf 'error: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
    esac
    shift
done
[[ "$BUDGET" =~ ^[1-9][0-9]*$ ]] || { printf 'error: --budget must be a positive integer, got %s\n' "$BUDGET" >&2; exit 2; }

[[ $EUID -eq 0 ]] || skip "needs root (debootstrap for the image)"
command -v qemu-system-aarch64 >/dev/null || skip "qemu-system-aarch64 is not installed (apt-get install qemu-system-arm)"
"$PYTHON" -c 'import fleetnas.host.cli' 2>/dev/null \
    || skip "$PYTHON cannot import fleetnas.host (pip install -e '.[host]' first, or pass --python)"
started=$SECONDS

bash "$HERE/arm64-vm-image.sh" --cache "$CACHE" || exit $?
image_s=$((SECONDS - started))

make_workdir fleetnas-arm64-vm
DATA=$WORK/data
mkdir -p "$DATA/wheels"
[[ -z "$OUT" ]] && OUT=$WORK/out
mkdir -p "$OUT"

log "building a wheel of the checkout"
copy_checkout "$REPO" "$WORK/src"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$DATA" "$WORK/src" >/dev/null 2>&1 \
    || "$PYTHON" -m pip wheel --quiet --no-deps -w "$DATA" "$WORK/src" >/dev/null 2>&1 \
    || fail "could not build a wheel from $REPO"
wheel=$(echo "$DATA"/fleetnas-*.whl)

# The guest's Python is Debian's 3.11 with glibc 2.36; the guest cannot reach the index, so its wheels come from here.
pyver=$(sed -n 's/^python=\([0-9]*\)\.\([0-9]*\).*/\1\2/p' "$CACHE/image-info.txt")
platforms=()
for p in manylinux2014_aarch64 manylinux_2_24_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64 \
         manylinux_2_31_aarch64 manylinux_2_34_aarch64 manylinux_2_35_aarch64 manylinux_2_36_aarch64; do
    platforms+=(--platform "$p")
done
log "downloading aarch64 wheels for cp$pyver (fleetnas's dependencies and ai-edge-litert)"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: "${platforms[@]}" \
    --python-version "$pyver" --implementation cp --abi "cp$pyver" -d "$DATA/wheels" "$wheel" ai-edge-litert \
    >"$WORK/pip-download.log" 2>&1 \
    || { tail -n 5 "$WORK/pip-download.log"; skip "no network: pip could not download the aarch64 wheels"; }

cp "$HERE/arm64-vm-guest-init.sh" "$DATA/guest-init.sh"
copy_checkout "$REPO" "$DATA/checkout"
"$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$OUT/token"
chmod 0600 "$OUT/token"
cp "$OUT/token" "$DATA/token"
echo "AGENT_PORT=$AGENT_PORT" >"$DATA/vm.env"
truncate -s 2G "$WORK/data.img"
mkfs.ext4 -q -F -L fleetnas-data -d "$DATA" "$WORK/data.img"

host_port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
console=$OUT/console.log
log "booting the arm64 VM (cortex-a72, 2 CPUs, 2 GiB, no KVM); agent on 127.0.0.1:$host_port"
boot_at=$SECONDS
# The cached root is opened with snapshot=on: the guest's writes go to a temporary file, the image stays clean.
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 2048 -display none -monitor none -serial "file:$console" \
    -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" \
    -append "root=/dev/vda rw console=ttyAMA0 init=/sbin/fleetnas-ci-init" \
    -drive "file=$CACHE/disk.img,format=raw,if=virtio,snapshot=on" \
    -drive "file=$WORK/data.img,format=raw,if=virtio" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$host_port-:$AGENT_PORT" -device virtio-net-device,netdev=n0 \
    </dev/null >"$WORK/qemu.log" 2>&1 &
qemu_pid=$!
stop_vm() { kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null; return 0; }
trap 'rc=$?; stop_vm; (exit "$rc"); remove_workdir' EXIT

vm_lines() { grep -a '^FLEETNAS-VM ' "$console" 2>/dev/null | tr -d '\r' || true; }
while :; do
    if grep -aq 'serving on ' "$console" 2>/dev/null; then break; fi
    if grep -aq '^FLEETNAS-VM FAILED' "$console" 2>/dev/null || ! kill -0 "$qemu_pid" 2>/dev/null; then
        tail -n 60 "$console" 2>/dev/null; cat "$WORK/qemu.log"; fail "the VM stopped before the agent served"
    fi
    if (( SECONDS - boot_at > BOOT_TIMEOUT_S )); then
        tail -n 60 "$console"; fail "the agent in the VM did not serve within $BOOT_TIMEOUT_S s"
    fi
    sleep 3
done
ready_s=$((SECONDS - boot_at))
vm_lines
vm_lines | grep -q 'selftest| .*selftest passed' || fail "the selftest in the VM did not pass"

cat >"$OUT/devices.toml" <<TOML
[[device]]
name = "arm64-vm"
address = "127.0.0.1:$host_port"
class = "cortex-a72-vm"
token_file = "$OUT/token"
TOML
fleetnas() { "$PYTHON" -m fleetnas.host.cli "$@"; }

t=$SECONDS
log "fleetnas devices check"
fleetnas devices check --devices "$OUT/devices.toml" --json --timeout-s 120 >"$OUT/check.json" \
    || { cat "$OUT/check.json"; fail "fleetnas devices check failed against the VM"; }
"$PYTHON" - "$OUT/check.json" <<'PY' || fail "the VM's agent is not usable (see check.json above)"
import json, sys
row = json.load(open(sys.argv[1]))[0]
print(json.dumps({k: row.get(k) for k in ("usable", "machine", "cpus", "runtimes", "device_id")}))
assert row["usable"] and row["machine"] == "aarch64", row
assert any("onnxruntime" in r for r in row["runtimes"]), row
PY
check_s=$((SECONDS - t))

t=$SECONDS
log "fleetnas search --supernet tiny --budget $BUDGET"
rm -rf "$OUT/run"
fleetnas search --supernet tiny --budget "$BUDGET" --devices "$OUT/devices.toml" --out "$OUT/run" --seed 0 \
    --no-progress --measurement-cache "$WORK/measurements.sqlite" >"$OUT/search.log" 2>&1 \
    || { tail -n 40 "$OUT/search.log"; fail "fleetnas search against the VM failed"; }
"$PYTHON" - "$OUT/run" <<'PY' || fail "the search left no front measured on the VM"
import json, sys, pathlib
run = pathlib.Path(sys.argv[1])
front = json.loads((run / "cortex-a72-vm" / "front.json").read_text())["front"]
summary = json.loads((run / "summary.json").read_text())
assert front and all(p["latency_ms"] > 0 for p in front), front
assert summary["measurements"] >= 1, summary
print(f"front: {len(front)} points, latency_ms {min(p['latency_ms'] for p in front):.3f}"
      f"..{max(p['latency_ms'] for p in front):.3f}; measurements: {summary['measurements']}")
PY
search_s=$((SECONDS - t))

log "timings: image ${image_s} s, boot to serving ${ready_s} s, devices check ${check_s} s, search ${search_s} s, total $((SECONDS - started)) s"
log "PASSED: install, selftest and serving in the arm64 VM; devices check and a tiny search from the host"
