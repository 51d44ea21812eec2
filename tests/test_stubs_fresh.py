"""The committed gRPC stubs are exactly what scripts/gen_stubs.py generates from proto/ (pinned grpcio-tools)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_generated_stubs_match_the_proto():
    pytest.importorskip("grpc_tools", reason="grpcio-tools comes with the [dev] extra")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_stubs.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_stubs_import_under_the_fleetnas_namespace():
    from fleetnas.agent.v1 import agent_pb2, agent_pb2_grpc
    assert agent_pb2.DESCRIPTOR.package == "fleetnas.agent.v1"
    assert hasattr(agent_pb2_grpc, "AgentStub")
