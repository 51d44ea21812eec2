"""Running a sensor command found on PATH (vcgencmd, termux-battery-status, nvpmodel), each failure typed.

Commands are looked up on PATH at every call, so tests put fake executables first on PATH.
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Sequence

from fleetnas.agent.power.base import SensorGarbage, SensorPermissionDenied, SensorVanished


def find_command(name: str) -> str:
    """The full path of a command on PATH, or '' when it is not installed."""
    return shutil.which(name) or ""


def run_command(argv: Sequence[str], timeout_s: float = 5.0) -> str:
    """stdout of a command; missing, denied, hung and failing commands each raise their SensorError."""
    path = find_command(argv[0])
    if not path:  # callers check presence when they are built: gone now means it vanished
        raise SensorVanished(f"{argv[0]} is no longer on PATH (uninstalled, or PATH changed?)")
    try:
        done = subprocess.run([path, *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout_s, check=False)
    except PermissionError as exc:
        raise SensorPermissionDenied(f"cannot run {path}: permission denied") from exc
    except FileNotFoundError as exc:
        raise SensorVanished(f"{path} vanished") from exc
    except subprocess.TimeoutExpired:
        raise SensorVanished(f"{' '.join(argv)} did not answer within {timeout_s:g} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = err[-1] if err else f"exit status {done.returncode}"
        if "permission" in detail.lower() or "not permitted" in detail.lower():
            raise SensorPermissionDenied(f"{' '.join(argv)}: {detail}")
        raise SensorGarbage(f"{' '.join(argv)} failed: {detail}")
    return done.stdout.decode("utf-8", "replace")
