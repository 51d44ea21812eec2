"""The command line answers at once: --version, and argument errors before any heavy import (torch, scikit-learn,
pymoo, matplotlib, onnx): they are imported only after argparse succeeded."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "pymoo", "matplotlib", "onnx", "onnxruntime", "scipy")


def _imported_by(args):
    """Top-level heavy packages imported by `python -X importtime -m fleetnas.host.cli ARGS`, and the result."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "fleetnas.host.cli", *args], capture_output=True,
                       text=True, timeout=120)
    imported = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name.split(".")[0] in HEAVY and "." not in name:
                imported.add(name)
    return imported, r


@pytest.mark.parametrize("args, message", [
    (["search", "--bogus"], "fleetnas search: error:"),
    (["search", "--supernet", "tiny", "--devices", "local", "--budget", "2", "--out", "x", "--bogus"],
     "unrecognized arguments: --bogus"),
    (["bench"], "the following arguments are required"),
    (["demo", "--budget", "many"], "invalid int value"),
    (["report"], "the following arguments are required: DIR"),
])
def test_argument_errors_come_before_heavy_imports(args, message):
    imported, r = _imported_by(args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert imported == set(), f"argument errors imported {sorted(imported)}"


def test_help_imports_nothing_heavy():
    imported, r = _imported_by(["search", "--help"])
    assert r.returncode == 0 and "--allow-random-weights" in r.stdout
    assert imported == set()


def test_version_prints_the_installed_version():
    from importlib import metadata
    r = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "--version"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"fleetnas {metadata.version('fleetnas')}"
