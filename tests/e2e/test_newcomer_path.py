"""A newcomer's path from a clean clone to a search on a board, for real (slow; root and debootstrap, else skipped).

1. `git clone` of this repository. The README's first command installs the host (`pip install torch==... &&
   pip install -e '.[host,litert]'`): this environment already is that install, so it is checked, not repeated.
2. On the "board" (a clean Debian root made with debootstrap, sharing this machine's loopback): the clone's own
   `deploy/install.sh`, with no source option, as deploy/README.md tells a newcomer; it builds a wheel of the
   checkout and installs it with the agent's dependencies only. Then the agent serves on a loopback port with the
   token install.sh generated (deploy/ci/chroot-agent.sh does 2).
3. From the host: `fleetnas devices check` and a short `fleetnas search --supernet tiny --budget 4` against it.

    python -m pytest -m slow tests/e2e/test_newcomer_path.py
Set FLEETNAS_CHROOT_CACHE=DIR to keep the debootstrap base between runs (a few minutes in all with it).
"""
from __future__ import annotations

import importlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVING = re.compile(r"serving on (127\.0\.0\.1:\d+)")


def fleetnas(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "fleetnas.host.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


class BoardInARoot:
    """deploy/ci/chroot-agent.sh of the clone, in its own process group; its output is collected by a thread."""

    def __init__(self, clone: Path, token_out: Path):
        cmd = ["bash", str(clone / "deploy" / "ci" / "chroot-agent.sh"), "--token-out", str(token_out)]
        if os.environ.get("FLEETNAS_CHROOT_CACHE"):
            cmd += ["--base-cache", os.environ["FLEETNAS_CHROOT_CACHE"]]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.output: list = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_address(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                continue
            if line is None:
                break
            match = SERVING.search(line)
            if match:
                return match.group(1)
        if self.proc.poll() == 77:
            pytest.skip(self.output[-1].strip() if self.output else "chroot-agent.sh skipped")
        raise AssertionError("the agent in the root never served:\n" + "".join(self.output[-80:]))

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


@pytest.mark.slow
def test_clean_clone_to_a_board_in_a_debian_root_to_a_search_from_the_host(tmp_path):
    if os.geteuid() != 0 or shutil.which("debootstrap") is None or shutil.which("git") is None:
        pytest.skip("needs root, debootstrap and git (apt-get install debootstrap git)")
    try:  # README command 1's install part: the host extras, torch among them, in this environment
        importlib.import_module("torch")
        importlib.import_module("fleetnas.host.cli")
    except ImportError as exc:
        pytest.skip(f"the host is not installed here (README command 1): {exc}")
    started = time.monotonic()

    clone = tmp_path / "fleetnas"
    cloned = subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], capture_output=True, text=True,
                            timeout=300)
    assert cloned.returncode == 0, cloned.stderr

    token = tmp_path / "board.token"
    board = BoardInARoot(clone, token)
    try:
        address = board.wait_for_address(timeout_s=1500)
        out = "".join(board.output)
        assert "building a wheel of /tmp/fleetnas/checkout" in out and "selftest passed" in out, out[-4000:]
        install_s = time.monotonic() - started

        devices = tmp_path / "devices.toml"
        devices.write_text(f'[[device]]\nname = "board"\naddress = "{address}"\nclass = "cpu"\n'
                           f'token_file = "{token}"\n')
        check = fleetnas("devices", "check", "--devices", devices, "--json", "--timeout-s", 30)
        assert check.returncode == 0, check.stdout + check.stderr
        row = json.loads(check.stdout)[0]
        assert row["usable"] and "onnxruntime" in row["runtimes"][0], row

        run = tmp_path / "run"
        # Its own measurement cache: the root runs on this machine, so a shared cache could answer for the board.
        search = fleetnas("search", "--supernet", "tiny", "--budget", 4, "--devices", devices, "--out", run,
                          "--seed", 0, "--no-progress", "--measurement-cache", tmp_path / "measurements.sqlite")
        assert search.returncode == 0, search.stdout[-4000:] + search.stderr[-4000:]
        assert "Traceback" not in search.stderr
        front = json.loads((run / "cpu" / "front.json").read_text())["front"]
        assert front and all(p["latency_ms"] > 0 for p in front), front
        summary = json.loads((run / "summary.json").read_text())
        assert summary["measurements"] >= 1 and summary["cache_hits"] == 0, summary
        points = json.loads((run / "cpu" / "points.json").read_text())
        assert points and {p["measurement"]["device_id"] for p in points} == {row["device_id"]}, (points, row)
        print(f"newcomer path: install on the board {install_s:.0f} s, "
              f"then check + search {time.monotonic() - started - install_s:.0f} s")
    finally:
        board.stop()
