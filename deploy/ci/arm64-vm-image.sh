#!/usr/bin/env bash
# Builds, once, a Debian arm64 disk image with Debian's arm64 kernel for arm64-vm-test.sh, and caches it:
#   DIR/disk.img (ext4, the whole root), DIR/vmlinuz, DIR/initrd.img, DIR/image-info.txt, DIR/recipe.sha256
# It is rebuilt only when the recipe below changes (suite, mirror, packages, initramfs settings, guest stub).
#
#   sudo deploy/ci/arm64-vm-image.sh [--cache /var/cache/fleetnas-arm64] [--suite bookworm] [--mirror URL] [--rebuild]
#
# The root is made with debootstrap on this x86 machine; its second stage runs arm64 binaries under qemu-user
# (binfmt_misc, registered for the run and unregistered after if it was not before). The initramfs is built exactly
# once, with only the modules a QEMU `virt` machine needs (debootstrap with the kernel included builds a full one
# twice under emulation). Measured here on 2 busy cores: 20 min (second stage 15, kernel 2.5, initramfs 1.5).
# Needs root, debootstrap, qemu-user-static, mkfs.ext4 and access to the Debian mirror.
# Exit status: 0 built or already cached, 1 failed, 2 bad usage, 77 skipped.
set -euo pipefail

CACHE=${FLEETNAS_ARM64_CACHE:-/var/cache/fleetnas-arm64}
SUITE=bookworm
MIRROR=${FLEETNAS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
REBUILD=no

log() { printf '[arm64-vm-image] %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; exit 77; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --cache) CACHE=$2; shift ;;
        --suite) SUITE=$2; shift ;;
        --mirror) MIRROR=$2; shift ;;
        --rebuild) REBUILD=yes ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) printf 'error: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
    esac
    shift
done

# What deploy/install.sh would apt-get (so it runs with --no-apt offline), plus what the guest init uses.
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,iproute2,kmod,initramfs-tools,zstd
# virtio over PCI (the disks) and MMIO (the network device) and ext4: all a `virt` machine needs to mount its root.
INITRAMFS_MODULES="virtio_pci virtio_mmio virtio_blk virtio_net ext4"
# PID 1 of the guest: the essentials mounted, then the data disk's script (arm64-vm-guest-init.sh) takes over.
read -r -d '' STUB_INIT <<'STUB' || true
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /mnt/fleetnas
if mount -t ext4 /dev/vdb /mnt/fleetnas && [ -f /mnt/fleetnas/guest-init.sh ]; then
    exec /bin/bash /mnt/fleetnas/guest-init.sh
fi
echo "fleetnas-ci-init: no data disk with guest-init.sh on /dev/vdb"
echo 1 > /proc/sys/kernel/sysrq; echo o > /proc/sysrq-trigger
STUB
RECIPE_HASH=$(printf '%s\n' "v1" "$SUITE" "$MIRROR" "$PACKAGES" "$INITRAMFS_MODULES" "$STUB_INIT" \
    | sha256sum | cut -c1-16)

[[ $EUID -eq 0 ]] || skip "needs root (debootstrap, chroot)"
for tool in debootstrap mkfs.ext4 unshare; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install debootstrap e2fsprogs util-linux)"
done

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # one build at a time; a second caller waits and then finds the image cached
if [[ "$REBUILD" == no && -f "$CACHE/recipe.sha256" && "$(cat "$CACHE/recipe.sha256")" == "$RECIPE_HASH" \
      && -f "$CACHE/disk.img" && -f "$CACHE/vmlinuz" && -f "$CACHE/initrd.img" ]]; then
    log "cached image in $CACHE is current (recipe $RECIPE_HASH)"
    exit 0
fi

# qemu-user for the second stage: register it if it is not, and undo that at the end.
BINFMT_MOUNTED=no
BINFMT_ENABLED=no
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    if ! command -v update-binfmts >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
        skip "qemu-user-static is not installed (apt-get install qemu-user-static binfmt-support)"
    fi
    if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || skip "cannot mount binfmt_misc here"
        BINFMT_MOUNTED=yes
    fi
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || skip "cannot register qemu-aarch64 in binfmt_misc"
    BINFMT_ENABLED=yes
fi

WORK=$(mktemp -d /var/tmp/fleetnas-arm64-image.XXXXXX)
ROOT=$WORK/root
cleanup() {
    local rc=$?
    if ! findmnt -rn -o TARGET | grep -q "^$ROOT"; then rm -rf --one-file-system "$WORK"; else log "kept $WORK (mounted)"; fi
    [[ "$BINFMT_ENABLED" == yes ]] && update-binfmts --disable qemu-aarch64 >/dev/null 2>&1
    [[ "$BINFMT_MOUNTED" == yes ]] && umount /proc/sys/fs/binfmt_misc 2>/dev/null
    exit "$rc"
}
trap cleanup EXIT

start=$SECONDS
log "debootstrap first stage: $SUITE arm64 from $MIRROR"
debootstrap --arch=arm64 --foreign --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -n 20 "$WORK/debootstrap.log"; fail "debootstrap (first stage) failed"; }
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

export ROOT INITRAMFS_MODULES STUB_INIT MIRROR SUITE
# Mounts (debootstrap's /proc, apt's) live in a private namespace: nothing stays mounted if this dies.
unshare --mount --propagation private bash -euo pipefail <<'INNER' || fail "building the root failed (see above)"
log() { printf '[arm64-vm-image] %s\n' "$*"; }
t=$SECONDS
log "debootstrap second stage under qemu-user (several minutes)"
chroot "$ROOT" /debootstrap/debootstrap --second-stage >/dev/null 2>&1 \
    || { tail -n 20 "$ROOT/debootstrap/debootstrap.log" 2>/dev/null; exit 1; }
log "  second stage took $((SECONDS - t)) s"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
# The kernel's own hook would build an initramfs with every module; it is built once, small, below.
in_root dpkg-divert --local --rename --add /usr/sbin/update-initramfs >/dev/null
ln -sf /bin/true "$ROOT/usr/sbin/update-initramfs"
t=$SECONDS
log "apt-get install linux-image-arm64"
in_root apt-get update -q >/dev/null
in_root apt-get install -y -q --no-install-recommends linux-image-arm64 >/dev/null
rm -f "$ROOT/usr/sbin/update-initramfs"
in_root dpkg-divert --local --rename --remove /usr/sbin/update-initramfs >/dev/null
log "  kernel installed in $((SECONDS - t)) s"
sed -i 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
printf '%s\n' $INITRAMFS_MODULES >>"$ROOT/etc/initramfs-tools/modules"
kver=$(basename "$(ls -d "$ROOT"/lib/modules/* | head -n 1)")
t=$SECONDS
log "update-initramfs for $kver (once)"
in_root update-initramfs -c -k "$kver" >/dev/null
log "  initramfs took $((SECONDS - t)) s"
printf '%s\n' "$STUB_INIT" >"$ROOT/sbin/fleetnas-ci-init"
chmod 0755 "$ROOT/sbin/fleetnas-ci-init"
echo fleetnas-arm64 >"$ROOT/etc/hostname"
in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/*
{
    echo "suite=$SUITE"
    echo "kernel=$kver"
    echo "kernel_package=$(in_root dpkg-query -W -f '${Version}' "linux-image-$kver")"
    echo "python=$(in_root python3 -c 'import platform; print(platform.python_version())')"
} >"$ROOT/etc/fleetnas-image-info"
umount "$ROOT/proc" 2>/dev/null || true
INNER

kver=$(sed -n 's/^kernel=//p' "$ROOT/etc/fleetnas-image-info")
[[ -n "$kver" && -f "$ROOT/boot/vmlinuz-$kver" && -f "$ROOT/boot/initrd.img-$kver" ]] \
    || fail "the root has no kernel or initramfs in /boot"
log "disk image (ext4, 3 GiB sparse)"
truncate -s 3G "$WORK/disk.img"
mkfs.ext4 -q -F -L fleetnas-root -d "$ROOT" "$WORK/disk.img" || fail "mkfs.ext4 -d failed (e2fsprogs >= 1.43 needed)"
# Replace the cached files only when all are ready, the recipe stamp last.
rm -f "$CACHE/recipe.sha256"
install -m 0644 "$ROOT/boot/vmlinuz-$kver" "$CACHE/vmlinuz"
install -m 0644 "$ROOT/boot/initrd.img-$kver" "$CACHE/initrd.img"
install -m 0644 "$ROOT/etc/fleetnas-image-info" "$CACHE/image-info.txt"
echo "build_s=$((SECONDS - start))" >>"$CACHE/image-info.txt"
mv "$WORK/disk.img" "$CACHE/disk.img"
echo "$RECIPE_HASH" >"$CACHE/recipe.sha256"
log "built in $((SECONDS - start)) s: $CACHE"
cat "$CACHE/image-info.txt"
