"""Files and folders only the agent's user can read: the model store, the device id, the reference model.

Created 0700 (folders) and 0600 (files) whatever the process umask, and folders the agent owns are tightened when
found looser (a store made by hand or by an older agent). Writes are atomic (a temporary file, then rename).
"""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` and any parents it needs, created 0700; ``path`` itself tightened to 0700 when we own it."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing + [path]:
        with contextlib.suppress(OSError):  # not ours (e.g. a shared parent): leave it alone
            st = created.stat()
            if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != DIR_MODE:
                os.chmod(created, DIR_MODE)
    return path


def open_private(path: Path, exclusive: bool = True):
    """A new file opened for unbuffered binary writing, mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # the umask may have taken bits away, never added: make it exact
    return os.fdopen(fd, "wb", buffering=0)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open_private(tmp, exclusive=False) as fh:
            view = memoryview(data)
            while view:
                view = view[fh.write(view):]
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def loose_permissions(path: Path) -> str:
    """'' when only the owner (and group) can read ``path``, else its mode as text, e.g. '0644'."""
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    return f"{mode:04o}" if mode & 0o007 else ""
