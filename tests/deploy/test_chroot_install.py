"""deploy/install.sh end to end in a clean Debian root (debootstrap): the checkout's own install.sh with no source
option (it builds a wheel of the checkout, as a newcomer's run does), `fleetnas-agent selftest` inside the root, an
upgrade with `--wheel`, and the uninstall.

Slow (about a minute with a cached base, two without; it downloads Debian packages and wheels), so it is out of the
default run: `python -m pytest -m slow tests/deploy/test_chroot_install.py`. The work is done by
deploy/ci/chroot-install-test.sh, which CI can also call directly; exit 77 from it means a prerequisite is missing.
Set FLEETNAS_CHROOT_CACHE=DIR to keep the debootstrap base between runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "ci" / "chroot-install-test.sh"


@pytest.mark.slow
# arm64 runs under qemu-user (skipped unless qemu-user-static is registered in binfmt_misc); the script gives the
# root an arm64 /proc/cpuinfo, without which onnxruntime segfaults at import under qemu-user (deploy/README.md).
@pytest.mark.parametrize("arch", ["native", "arm64"])
def test_install_selftest_upgrade_uninstall_in_a_clean_debian_root(arch):
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("needs root and debootstrap (apt-get install debootstrap)")
    cmd = ["bash", str(SCRIPT)]
    if arch != "native":
        cmd += ["--arch", arch]
    if os.environ.get("FLEETNAS_CHROOT_CACHE"):
        cmd += ["--base-cache", os.environ["FLEETNAS_CHROOT_CACHE"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode == 77:
        pytest.skip(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "PASSED" in proc.stdout and "selftest passed" in proc.stdout
    assert "building a wheel of /tmp/fleetnas/checkout" in proc.stdout
