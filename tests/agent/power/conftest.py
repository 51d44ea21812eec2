"""The fake sensor trees live on tmpfs where the machine has one.

sysfs is a RAM filesystem: a reading is never older than the sensor's last update. A fake tree under /tmp sits on
the disk, where a busy CI machine can hold a file write for a second; the fake's readings then go stale and the
energy comparisons test the disk, not the meters.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

RAM_DIR = Path("/dev/shm")


def _ram_dir_usable() -> bool:
    # fake commands are executables in the tree: a noexec tmpfs will not do
    try:
        return RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK) and not os.statvfs(RAM_DIR).f_flag & os.ST_NOEXEC
    except OSError:
        return False


@pytest.fixture
def tmp_path(tmp_path_factory):
    if not _ram_dir_usable():
        yield tmp_path_factory.mktemp("power")
        return
    path = Path(tempfile.mkdtemp(prefix="fleetnas-power-", dir=RAM_DIR))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
