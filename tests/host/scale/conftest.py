import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# The message `fleetnas search --ray` gives when the cluster it starts on this machine does not come up.
LOCAL_START_FAILED = "could not start a Ray cluster on this machine"


def _ray_temp_root() -> str:
    """tmpfs where there is one (Ray writes its session files and logs at start, and a busy disk has stalled that
    start past Ray's own deadline); unix socket paths under it must stay short."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else tempfile.gettempdir()


def _ray_logs(ray_tmp: str) -> str:
    """The tail of the Ray control process's own logs: what it said before it did not come up."""
    said = []
    for log in sorted(Path(ray_tmp).glob("ray/session_2*/logs/gcs_server.*")):   # not the session_latest link
        lines = log.read_text(errors="replace").splitlines()
        # its first lines (how far the start got) and every warning, error or fatal line after them
        kept = lines[:8] + [line for line in lines[8:] if line.startswith("[") and " I " not in line[:40]]
        said.append(f"--- {log.name}:\n" + "\n".join(kept)[-1200:])
    return "\n".join(said) or "(Ray wrote no control-process log)"


@pytest.fixture(scope="session")
def isolated():
    """``isolated(script, timeout_s=...)``: run a shell script in a loopback-only namespace with Ray's settings
    (usage stats off, no auth token under the home folder, a fresh short temp folder for its sockets each run).

    A run whose local Ray cluster did not come up runs once more: the start is Ray's, not what these tests check.
    If it fails again, Ray's own logs of both attempts are added to the returned stderr."""
    pytest.importorskip("ray", reason="Ray not installed: pip install -e '.[ray]'")
    from loopback import LoopbackUnavailable, check_loopback_namespace, run_isolated
    try:
        check_loopback_namespace()
    except LoopbackUnavailable as exc:
        pytest.skip(f"no loopback-only network namespace: {exc}")
    bin_dir = str(Path(sys.executable).parent)
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}

    def attempt(script: str, timeout_s: float):
        ray_tmp = tempfile.mkdtemp(prefix="fr", dir=_ray_temp_root())
        try:
            result = run_isolated(script, env=dict(env, RAY_TMPDIR=ray_tmp), timeout_s=timeout_s)
            logs = _ray_logs(ray_tmp) if LOCAL_START_FAILED in result.stderr else ""
            return result, logs
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)

    def run(script: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
        result, first_logs = attempt(script, timeout_s)
        if not first_logs:
            return result
        result, logs = attempt(script, timeout_s)
        if logs:
            result.stderr += f"\n=== Ray's logs, first attempt:\n{first_logs}\n=== second attempt:\n{logs}"
        return result
    yield run
