"""Inference runtimes the agent measures with, found in one registry (group ``fleetnas.runtimes``): built-ins
"onnxruntime" (base install), "litert" and "executorch" (extras), plus any a package registers (see
fleetnas.agent.plugins).

``names()`` lists them; ``get(name)`` returns the Runtime object (no heavy import yet); ``require(name)`` also checks
that the runtime's package is importable and raises RuntimeUnavailable with its install hint otherwise;
``for_format(name, model_format)`` checks the runtime reads that format; ``runtime_infos()`` lists them all for
GetDeviceInfo (this imports the runtimes, so call it once and cache; the worker process does the actual loading).
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Dict, List

from fleetnas.agent.errors import AgentError, InvalidRequest, RuntimeUnavailable
from fleetnas.agent.plugins import Registry
from fleetnas.agent.records import RuntimeInfo
from fleetnas.agent.runtimes.base import Runtime

RUNTIMES = Registry("fleetnas.runtimes", {"onnxruntime": "fleetnas.agent.runtimes.onnx:OnnxRuntime",
                                          "litert": "fleetnas.agent.runtimes.litert:LiteRtRuntime",
                                          "executorch": "fleetnas.agent.runtimes.executorch:ExecuTorchRuntime"},
                   "runtime")
_instances: Dict[str, Runtime] = {}


def names() -> List[str]:
    return RUNTIMES.names()


def get(name: str) -> Runtime:
    if name not in _instances:
        _instances[name] = RUNTIMES.load(name)()
    return _instances[name]


def require(name: str) -> Runtime:
    """The runtime, if its package is installed: a cheap find_spec check, so the server never imports it."""
    runtime = get(name)
    if not _installed(runtime):
        installed = [n for n in names() if _installed_by_name(n)]
        raise RuntimeUnavailable(f"runtime {name!r} not installed on this board; installed: "
                                 f"{', '.join(installed) or 'none'}; {runtime.install_hint}")
    return runtime


def for_format(name: str, model_format: str) -> Runtime:
    """The installed runtime ``name``, checked to read ``model_format`` models."""
    runtime = require(name)
    if model_format not in runtime.model_formats:
        raise InvalidRequest(f"runtime {name!r} runs {', '.join(runtime.model_formats)} models, not {model_format}")
    return runtime


def _installed_by_name(name: str) -> bool:
    try:
        return _installed(get(name))
    except AgentError:  # a plug-in that cannot be loaded is not installed
        return False


def _installed(runtime: Runtime) -> bool:
    return any(_importable(m) for m in runtime.modules)


def _importable(module: str) -> bool:
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
    return [_info(name) for name in names()]


def _info(name: str) -> RuntimeInfo:
    try:
        return get(name).info()
    except AgentError as exc:  # a plug-in whose module does not import
        return RuntimeInfo(name=name, available=False, message=str(exc))


__all__ = ["RUNTIMES", "Runtime", "for_format", "get", "names", "require", "runtime_infos"]
