"""Run the real `fleetnas` command line in a subprocess, optionally with some packages made unimportable.

``run_cli(args, block=("torch", "matplotlib"))`` starts ``python -c WRAPPER`` where WRAPPER puts a meta-path finder
in front of the interpreter's that raises ModuleNotFoundError for those top-level packages (as a board install
without the ``[host]`` extra does), then calls fleetnas.host.cli.main. Nothing of fleetnas is replaced.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, Optional, Sequence

# Every package the [host] extra brings: a board install has none of them.
HOST_EXTRA = ("torch", "onnx", "onnxscript", "pymoo", "sklearn", "scipy", "matplotlib", "rich", "tomli")

_WRAPPER = """
import sys
BLOCKED = set(sys.argv[1].split(",")) - {""}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
from fleetnas.host.cli import main
sys.argv = ["fleetnas"] + sys.argv[2:]
sys.exit(main(sys.argv[1:]))
"""


def run_cli(args: Sequence[str], *, block: Sequence[str] = (), env: Optional[Dict[str, str]] = None,
            timeout_s: float = 300, cwd=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-c", _WRAPPER, ",".join(block), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout_s, env=full_env, cwd=cwd)


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-3000:]
