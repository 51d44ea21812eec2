"""The agent runs on boards without torch: its server, CLI and runtimes must not import torch, pymoo or the host."""
import subprocess
import sys

FORBIDDEN = ("torch", "pymoo", "sklearn", "onnx", "matplotlib", "fleetnas.host")
AGENT_MODULES = ("fleetnas.agent.rpc.server", "fleetnas.agent.cli", "fleetnas.agent.measure.service",
                 "fleetnas.agent.measure.worker", "fleetnas.agent.measure.worker_child", "fleetnas.agent.runtimes.onnx",
                 "fleetnas.agent.runtimes.litert", "fleetnas.agent.runtimes.executorch",
                 "fleetnas.agent.board.device_info", "fleetnas.agent.selftest")


def test_agent_imports_no_host_side_packages():
    code = (
        "import importlib, sys\n"
        f"for m in {AGENT_MODULES!r}: importlib.import_module(m)\n"
        # instantiate what `serve` builds, so lazy imports inside constructors count too
        "from fleetnas.agent.runtimes import runtime_infos; runtime_infos()\n"
        f"bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r}))\n"
        "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the agent imported: {out.stdout.strip()}"
