"""ExecuTorch .pte programs through a real agent on 127.0.0.1: upload, measure on the executorch runtime, `info`;
damaged or foreign bytes refused at upload by the byte check (nothing runs), deeper damage a typed outcome."""
import hashlib
import subprocess
import sys
import textwrap

import pytest

from agent_harness import FAST_TIMING
from fleetnas.agent.measure.reference_model import build_onnx_bytes
from fleetnas.agent.store.formats import check_model
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import outcome_name

MEASURED = ("OK", "UNSTABLE")  # UNSTABLE still carries every number; a loaded machine may flag a short run


@pytest.fixture(scope="module")
def pte_bytes():
    """A small CNN lowered to XNNPACK, the way the host's PteExporter does it."""
    pytest.importorskip("executorch", reason="executorch not installed: pip install 'fleetnas[executorch]'")
    torch = pytest.importorskip("torch")
    from fleetnas.host.export.pte import pte_bytes as build

    class OneNet:  # the few members of a super-network that pte_bytes uses
        name = "one"

        def extract(self, config):
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                       torch.nn.Flatten(), torch.nn.Linear(8, 10))

        def example_input(self, config):
            return torch.zeros(1, 3, 16, 16)

    data, _, _ = build(OneNet(), {})
    return data


@pytest.fixture
def pte_path(tmp_path, pte_bytes):
    path = tmp_path / "net.pte"
    path.write_bytes(pte_bytes)
    return path


def test_the_byte_check_knows_a_real_program(pte_bytes):
    assert pte_bytes[4:8] == b"ET12"  # the ExecuTorch 1.x file identifier the check relies on
    assert check_model(pte_bytes, "") == "pte" and check_model(pte_bytes, "pte") == "pte"


def test_a_pte_is_uploaded_measured_and_info_lists_the_runtime(agent, pte_path):
    client = agent.client()
    runtime = {r.name: r for r in client.device_info().runtimes}["executorch"]
    assert runtime.available, runtime.message
    assert runtime.version.startswith("executorch ") and "XNNPACK" in runtime.execution_providers
    assert list(runtime.formats) == [pb.MODEL_FORMAT_PTE]

    sha, uploaded = client.ensure_model(pte_path)
    assert uploaded and sha == hashlib.sha256(pte_path.read_bytes()).hexdigest()
    assert [m.format for m in client.list_models().models] == [pb.MODEL_FORMAT_PTE]
    r = client.measure(sha, runtime="executorch", options=pb.RuntimeOptions(threads=1),
                       timing=pb.TimingConfig(**FAST_TIMING))
    assert outcome_name(r) in MEASURED, r.message
    assert r.config.runtime == "executorch" and r.config.runtime_version.startswith("executorch ")
    assert r.config.intra_op_threads == 1 and r.config.execution_provider == "XNNPACK"
    assert list(r.config.input_shapes) == ["input_0:float32[1,3,16,16]"]
    assert 0 < r.overall.min_ms <= r.overall.median_ms and r.overall.n >= 15 and len(r.blocks) == 3
    assert r.phases.load_ms > 0 and r.phases.first_inference_ms > 0


def test_onnxruntime_refuses_a_pte_model(agent, pte_path):
    client = agent.client()
    sha, _ = client.ensure_model(pte_path)
    with pytest.raises(AgentCallError, match="runs onnx models, not pte") as err:
        client.measure(sha, runtime="onnxruntime", timing=pb.TimingConfig(**FAST_TIMING))
    assert err.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("damage,expect", [
    (lambda d: d[: len(d) // 3], "truncated: the ExecuTorch program needs"),
    (lambda d: d[:-1], "truncated: the ExecuTorch program needs"),
    (lambda d: d[:4] + b"XX12" + d[8:], "file identifier 'ET' \\+ schema version"),
    (lambda d: b"\x89PNG\r\n\x1a\n" + bytes(200), "not a valid pte model"),
    (lambda d: build_onnx_bytes(1, 8, 1, 0), "it looks like a onnx file: declare format onnx"),
])
def test_damaged_or_foreign_bytes_are_refused_before_anything_runs(agent, tmp_path, pte_bytes, damage, expect):
    client = agent.client()
    bad = tmp_path / "bad.pte"
    bad.write_bytes(damage(pte_bytes))
    with pytest.raises(AgentCallError, match=expect) as err:
        client.upload(bad)
    assert err.value.code == "INVALID_ARGUMENT"
    assert client.list_models().models == []   # refused by the byte check: nothing stored, so nothing can run
    assert client.device_info().device_id      # still serving


def test_damage_behind_a_valid_header_is_a_load_failure_not_a_crash(agent, tmp_path, pte_bytes):
    data = bytearray(pte_bytes)
    data[64:len(data) // 2] = bytes(len(data) // 2 - 64)   # zero the program's tables, keep the header
    path = tmp_path / "zeroed.pte"
    path.write_bytes(bytes(data))
    client = agent.client()
    sha, _ = client.ensure_model(path)
    r = client.measure(sha, runtime="executorch", options=pb.RuntimeOptions(threads=1),
                       timing=pb.TimingConfig(**FAST_TIMING))
    assert outcome_name(r) in ("LOAD_FAILED", "RUN_FAILED", "CRASHED"), outcome_name(r)
    assert r.message and client.device_info().device_id


def test_without_executorch_the_runtime_is_listed_unavailable_with_the_install_hint():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "executorch":
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        from fleetnas.agent import runtimes
        from fleetnas.agent.errors import RuntimeUnavailable
        info = [i for i in runtimes.runtime_infos() if i.name == "executorch"][0]
        assert not info.available and "pip install 'fleetnas[executorch]'" in info.message, info
        try:
            runtimes.for_format("executorch", "pte")
        except RuntimeUnavailable as exc:
            print("RAISED", exc)
        print("torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("RAISED runtime 'executorch' not installed on this board") and "fleetnas[executorch]" \
        in lines[0]
    assert lines[1] == "False"
