"""What users read (help texts, shipped code and docs) speaks of what the tool does, never of project bookkeeping:
no "issue 4", "#12", "the issue's targets" in anything shipped."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOKKEEPING = re.compile(r"\b[Ii]ssues? ?#?\d+|\bthe issue'?s\b|#\d{1,3}\b(?![0-9a-fA-F])")
SHIPPED = ["agent", "host", "benchmarks", "deploy", "scripts", "docs", "README.md"]
HOST_COMMANDS = ["search", "bench", "devices", "measure", "report", "export", "supernets", "demo"]
AGENT_COMMANDS = ["serve", "info", "selftest"]


def shipped_text_files():
    for name in SHIPPED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if f.suffix in {".py", ".md", ".sh", ".toml", ".yml", ".yaml", ".service", ".txt", ""} and \
                    "__pycache__" not in f.parts:
                yield f


def test_the_pattern_catches_bookkeeping_and_spares_hex_and_colours():
    assert BOOKKEEPING.search("a search's output directory (issue 6)")
    assert BOOKKEEPING.search("meets the issue's targets") and BOOKKEEPING.search("see #12 for why")
    assert not BOOKKEEPING.search("sha256 #a1b2c3d4e5 and colour #ff8800") and not BOOKKEEPING.search("no issues")


def test_no_bookkeeping_in_shipped_files():
    found = []
    for f in shipped_text_files():
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
                  if BOOKKEEPING.search(line)]
    assert not found, "say what the thing does instead:\n" + "\n".join(found)


@pytest.mark.parametrize("module,command", [("fleetnas.host.cli", c) for c in HOST_COMMANDS] +
                         [("fleetnas.agent.cli", c) for c in AGENT_COMMANDS])
def test_no_bookkeeping_in_help(module, command):
    r = subprocess.run([sys.executable, "-m", module, command, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr
    assert not BOOKKEEPING.search(r.stdout), r.stdout
