"""On a terminal `fleetnas demo` shows the live display, and it ticks on time: the elapsed seconds in its title
advance while the search thread is busy (exporting, waiting for the board), not only when a result arrives.
The real command runs with its stdout on a pseudo-terminal."""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time


def test_demo_on_a_terminal_redraws_on_a_timer(tmp_path):
    master, slave = pty.openpty()
    env = dict(os.environ, FLEETNAS_CACHE_DIR=str(tmp_path / "cache"), COLUMNS="200", LINES="60", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "fleetnas.host.cli", "demo", "--out", str(tmp_path / "demo"),
                             "--budget", "2"], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                            env=env)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:   # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    stderr = proc.stderr.read().decode()
    assert proc.returncode == 0 and "Traceback" not in stderr + text, stderr[-2000:]
    seconds = {int(s) for s in re.findall(r"fleet \((\d+) s\)", text)}
    assert len(seconds) >= 3, sorted(seconds)   # redrawn as time passed
    assert "local: front of" in text and not re.search(r"^\[\s*\d+ s\] local:", text, flags=re.M)
