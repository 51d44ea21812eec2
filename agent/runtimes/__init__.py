"""Inference runtimes the agent can measure with: "onnxruntime" (base install) and "litert" (extra).

``get(name)`` returns the Runtime object (no heavy import yet); ``require(name)`` also checks the runtime is
importable and raises RuntimeUnavailable with the install hint otherwise; ``runtime_infos()`` lists them all for
GetDeviceInfo (this imports the runtimes, so call it once and cache; the worker process does the actual loading).
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import List

from fleetnas.agent.errors import InvalidRequest, RuntimeUnavailable
from fleetnas.agent.records import RUNTIMES, RuntimeInfo
from fleetnas.agent.runtimes.base import Runtime
from fleetnas.agent.runtimes.litert import INSTALL_HINT as LITERT_HINT
from fleetnas.agent.runtimes.litert import LiteRtRuntime
from fleetnas.agent.runtimes.onnx import INSTALL_HINT as ONNX_HINT
from fleetnas.agent.runtimes.onnx import OnnxRuntime

_RUNTIMES = {"onnxruntime": OnnxRuntime(), "litert": LiteRtRuntime()}
_MODULES = {"onnxruntime": (("onnxruntime",), ONNX_HINT), "litert": (("ai_edge_litert", "tflite_runtime"), LITERT_HINT)}
assert tuple(_RUNTIMES) == RUNTIMES


def get(name: str) -> Runtime:
    try:
        return _RUNTIMES[name]
    except KeyError:
        raise InvalidRequest(f"unknown runtime {name!r}: use one of {', '.join(RUNTIMES)}") from None


def require(name: str) -> Runtime:
    """The runtime, if its package is installed: a cheap find_spec check, so the server never imports it."""
    runtime = get(name)
    modules, hint = _MODULES[name]
    if not any(_installed(m) for m in modules):
        installed = [n for n, (mods, _) in _MODULES.items() if any(_installed(m) for m in mods)]
        raise RuntimeUnavailable(f"runtime {name!r} not installed on this board; installed: "
                                 f"{', '.join(installed) or 'none'}; {hint}")
    return runtime


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed install counts as absent
        return False


def runtime_infos(isolated: bool = False, timeout_s: float = 60.0) -> List[RuntimeInfo]:
    """Every runtime's availability, version and providers.

    ``isolated=True`` asks a short-lived ``python -m fleetnas.agent.runtimes`` instead, so the long-running agent
    never maps the runtimes' libraries (~30 MB of its idle RSS on x86); if that child fails, falls back in-process.
    """
    if isolated:
        try:
            out = subprocess.run([sys.executable, "-m", "fleetnas.agent.runtimes"], capture_output=True,
                                 timeout=timeout_s, check=True).stdout
            return [RuntimeInfo(**{**d, "providers": tuple(d["providers"])}) for d in json.loads(out)]
        except (OSError, subprocess.SubprocessError, ValueError, TypeError, KeyError):
            pass
    return [runtime.info() for runtime in _RUNTIMES.values()]


__all__ = ["Runtime", "get", "require", "runtime_infos"]
