#!/usr/bin/env bash
# Functions shared by chroot-install-test.sh and chroot-agent.sh (source it; it runs nothing by itself):
# a clean Debian root made with debootstrap (or unpacked from a cached base), a copy of a checkout inside it, and
# in_root to run a command there. The sourcing script defines log, skip (exit 77) and fail (exit 1).

# Root, debootstrap and unshare present; a foreign ARCH (arm64) needs qemu-user registered in binfmt_misc.
chroot_prerequisites() {
    local arch=$1 host_arch
    [[ $EUID -eq 0 ]] || skip "needs root (debootstrap, chroot)"
    command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"
    command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
    host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    if [[ "$arch" != "$host_arch" ]]; then
        [[ "$arch" == arm64 ]] || fail "only the host architecture or arm64 (under qemu) is supported, got $arch"
        [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] \
            || skip "arm64 needs qemu-user-static registered in binfmt_misc (apt-get install qemu-user-static binfmt-support)"
    fi
}

# make_workdir NAME: a fresh folder under /var/tmp (sets WORK, and ROOT inside it for the Debian root), removed when
# the script exits unless KEEP=yes or something is still mounted under it.
make_workdir() {
    WORK=$(mktemp -d "/var/tmp/$1.XXXXXX")
    ROOT=$WORK/root
    trap remove_workdir EXIT
}

remove_workdir() {
    local rc=$?
    # Mounts are made in a private namespace that is gone by now; --one-file-system is a second guard.
    if [[ "${KEEP:-no}" == no ]] && ! findmnt -rn -o TARGET | grep -q "^$ROOT"; then
        rm -rf --one-file-system "$WORK"
    else
        log "kept $WORK"
    fi
    exit "$rc"
}

# make_root ROOT SUITE ARCH MIRROR [BASE_CACHE]: a minimal Debian in ROOT that reaches the mirror and the package
# index the way this machine does (same resolver, same CA bundle).
make_root() {
    local root=$1 suite=$2 arch=$3 mirror=$4 base_cache=${5:-} cache_tar=""
    [[ -n "$base_cache" ]] && cache_tar="$base_cache/debian-$suite-$arch-minbase.tar"
    if [[ -n "$cache_tar" && -f "$cache_tar" ]]; then
        log "unpacking cached base $cache_tar"
        mkdir -p "$root" && tar -xpf "$cache_tar" -C "$root"
    else
        log "debootstrap $suite $arch from $mirror (a minute natively, 10 or more under qemu)"
        debootstrap --variant=minbase --arch="$arch" --include=ca-certificates "$suite" "$root" "$mirror" \
            >"$root.debootstrap.log" 2>&1 || { tail -n 20 "$root.debootstrap.log"; fail "debootstrap failed"; }
        if [[ -n "$cache_tar" ]]; then
            mkdir -p "$base_cache" && tar -cpf "$cache_tar.tmp" -C "$root" . && mv "$cache_tar.tmp" "$cache_tar"
        fi
    fi
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; fi
}

# copy_checkout REPO DEST: the checkout's tracked and new (not ignored) files, as a fresh clone would have them
# plus uncommitted edits; without git, everything but the usual build and cache folders.
copy_checkout() {
    local repo=$1 dest=$2
    mkdir -p "$dest"
    if [[ -e "$repo/.git" ]] && command -v git >/dev/null; then
        git -c safe.directory="$repo" -C "$repo" ls-files -z --cached --others --exclude-standard \
            | tar -C "$repo" --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -C "$dest" -xf -
    else
        tar -C "$repo" --exclude=.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
            --exclude=__pycache__ -cf - . | tar -C "$dest" -xf -
    fi
    [[ -x "$dest/deploy/install.sh" ]] || fail "copying $repo into the root lost deploy/install.sh"
}

# Inside a private mount namespace (unshare --mount): /proc, a read-only /sys and /dev for the root; for a foreign
# ARCH (arm64 under qemu-user) also an arm64 /proc/cpuinfo, see arm64_cpuinfo below.
mount_root() {
    local root=$1 arch=${2:-} host_arch
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys" && mount -o remount,bind,ro "$root/sys"
    mount --rbind /dev "$root/dev"
    host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    if [[ "$arch" == arm64 && "$host_arch" != arm64 ]]; then
        arm64_cpuinfo >"$root.cpuinfo"
        mount --bind "$root.cpuinfo" "$root/proc/cpuinfo"
    fi
}

# Under qemu-user an arm64 process sees this x86 machine's /proc/cpuinfo together with its /sys CPU topology, and
# onnxruntime's bundled cpuinfo library dereferences NULL on that mix (SIGSEGV at `import onnxruntime`; see
# deploy/README.md). A Cortex-A72 /proc/cpuinfo, one entry per CPU, is what an arm64 board would show.
arm64_cpuinfo() {
    local n
    for ((n = 0; n < $(nproc --all); n++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n' "$n"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done
}

# in_root CMD...: CMD in the root $ROOT (set by the sourcing script) with a clean environment.
# shellcheck disable=SC2153
in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 PYTHONUNBUFFERED=1 "$@"
}
