"""Run a shell script in a network namespace with only loopback (and its own process table), as root.

Ray advertises the machine's own address even when told 127.0.0.1; in a namespace whose only interface is ``lo``
nothing can go past loopback. The process namespace (with its own /proc) means a script that looks for processes
by name (`pgrep`) sees only its own, and everything it started ends with it.

    result = run_isolated("ray start --head ... && fleetnas search ...", env=..., timeout_s=120)

``LoopbackUnavailable`` (with the reason) where no such namespace can be made here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, Optional


class LoopbackUnavailable(Exception):
    """No loopback-only namespace here; the message says why."""


def check_loopback_namespace() -> None:
    if os.geteuid() != 0:
        raise LoopbackUnavailable("network namespaces need root")
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            raise LoopbackUnavailable(f"{tool} not found (Debian: apt-get install util-linux iproute2)")
    probe = run_isolated("ip -o link | grep -vc ': lo:' || true", timeout_s=30)
    if probe.returncode != 0 or probe.stdout.strip() != "0":
        raise LoopbackUnavailable(f"unshare --net failed: {(probe.stderr or probe.stdout).strip()[:200]}")


def run_isolated(script: str, *, env: Optional[Dict[str, str]] = None, timeout_s: float = 300,
                 cwd=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c",
                           f"ip link set lo up && {{\n{script}\n}}"], capture_output=True, text=True,
                          timeout=timeout_s, env=full_env, cwd=cwd)
