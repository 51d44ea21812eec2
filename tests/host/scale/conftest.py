import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def isolated():
    """``isolated(script, timeout_s=...)``: run a shell script in a loopback-only namespace with Ray's settings
    (usage stats off, no auth token under the home folder, a short temp folder for its sockets)."""
    pytest.importorskip("ray", reason="Ray not installed: pip install -e '.[ray]'")
    from loopback import LoopbackUnavailable, check_loopback_namespace, run_isolated
    try:
        check_loopback_namespace()
    except LoopbackUnavailable as exc:
        pytest.skip(f"no loopback-only network namespace: {exc}")
    ray_tmp = tempfile.mkdtemp(prefix="fr", dir="/tmp")      # unix socket paths must stay short
    bin_dir = str(Path(sys.executable).parent)
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp,
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}

    def run(script: str, timeout_s: float = 240):
        return run_isolated(script, env=env, timeout_s=timeout_s)
    yield run
    shutil.rmtree(ray_tmp, ignore_errors=True)
