"""The seam against a real agent: records out, typed errors, and keys that stay what journals and caches hold."""
import dataclasses
import logging
import socket

import grpc
import pytest

from fleetnas.host.errors import (AgentAuthError, AgentCallError, AgentRejected, AgentUnreachable, ModelNotFound,
                                  RuntimeMissing, UsageError)
from fleetnas.host.fleet.client import AgentClient, call_error
from fleetnas.host.fleet.contract import (QUICK_TIMING, DeviceInfo, MeasureResult, RuntimeConfig, TimingConfig,
                                          write_reference_model)
from fleetnas.host.fleet.devices import Device
from fleetnas.host.fleet.formats import runtime_formats
from fleetnas.host.fleet.health import DeviceStatus
from fleetnas.host.fleet.measurements import Measurement

FAST = RuntimeConfig(threads=1, timing=TimingConfig(warmup_runs=2, warmup_s=0.05, blocks=3, min_runs_per_block=5,
                                                    min_block_s=0.05, timeout_s=60.0))


def test_device_info_tells_each_runtime_and_the_formats_it_loads(agent):
    with AgentClient(agent.address) as client:
        info = client.device_info()
    assert isinstance(info, DeviceInfo) and info.device_id and len(info.fingerprint_sha256) == 64
    assert info.runtime("onnxruntime").formats == ("onnx",) and info.runtime("litert").formats == ("tflite",)
    assert info.cache_identity == info.fingerprint_sha256 and not info.emulated
    assert runtime_formats({"dev0": info}, "onnxruntime") == ("onnx",)
    with pytest.raises(UsageError, match=r"device dev0 does not offer runtime 'tvm'; it offers onnxruntime \(onnx\)"):
        runtime_formats({"dev0": info}, "tvm")


def test_measure_returns_a_result_record_that_becomes_the_journal_measurement(agent, tmp_path):
    model = write_reference_model(tmp_path, "onnx", width=16)
    with AgentClient(agent.address) as client:
        sha, uploaded = client.ensure_model(model)
        listing = client.list_models()
        result = client.measure(sha, FAST, request_id="cfg@cpu")
    assert uploaded and [m.sha256 for m in listing.models] == [sha] and listing.models[0].format == "onnx"
    assert isinstance(result, MeasureResult) and result.outcome in ("OK", "UNSTABLE"), result.message
    assert result.request_id == "cfg@cpu" and result.config.intra_op_threads == 1 and result.overall.median_ms > 0
    assert result.stability in ("STABLE", "NOISY", "UNSTABLE") and len(result.blocks) >= 3
    m = result.to_measurement(device_fingerprint="fp", model_sha256=sha, runtime_key=FAST.key, device_class="cpu",
                              device_name="dev0", config_key="cfg")
    assert m.latency_ms == result.overall.median_ms and m.source == "measured" and m.device_id == result.device_id
    assert m.response["device_name"] == "dev0" and m.response["outcome"] in ("OUTCOME_OK", "OUTCOME_UNSTABLE")
    # the journal's and the cache's columns: old journals read back only while these names stay, and fields added
    # since have defaults (an old journal's payload lacks them)
    fields = dataclasses.fields(Measurement)
    assert [f.name for f in fields[:14]] == [
        "device_fingerprint", "model_sha256", "runtime_key", "device_class", "device_name", "device_id", "config_key",
        "outcome", "latency_ms", "energy_mj", "emulated", "source", "recorded_unix_ns", "response"]
    assert [f.name for f in fields[14:]] == ["replayed"] and fields[14].default is False and not m.replayed


def test_agent_errors_come_back_as_types(agent, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with AgentClient(agent.address) as client:
        with pytest.raises(ModelNotFound) as missing:
            client.measure("ab" * 32, FAST)
        with pytest.raises(AgentRejected):
            client.upload(bad)
        sha, _ = client.ensure_model(write_reference_model(tmp_path, "onnx", width=8))
        with pytest.raises(AgentRejected, match="tvm"):
            client.measure(sha, dataclasses.replace(FAST, runtime="tvm"))
    assert missing.value.code == "NOT_FOUND" and missing.value.address == agent.address   # kept for older callers
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with AgentClient(f"127.0.0.1:{port}") as client, pytest.raises(AgentUnreachable, match="agent unreachable"):
        client.device_info(timeout_s=3)
    assert isinstance(call_error("a:1", grpc.StatusCode.FAILED_PRECONDITION, "no litert"), RuntimeMissing)
    assert type(call_error("a:1", grpc.StatusCode.INTERNAL, "bug")) is AgentCallError


def test_a_wrong_token_is_an_auth_error(tmp_path):
    from agent_harness import running_agent
    with running_agent(tmp_path / "agent", token="s3cret") as agent:
        with AgentClient(agent.address, token="guess") as client, pytest.raises(AgentAuthError):
            client.device_info()


def test_runtime_key_is_the_one_caches_and_run_files_already_hold():
    key = ('{"energy": false, "ep": "", "runtime": "onnxruntime", "threads": 0, "timing": {"blocks": 3, '
           '"min_block_s": 0.1, "min_runs_per_block": 10, "timeout_s": 120.0, "warmup_runs": 5, "warmup_s": 0.1}}')
    assert RuntimeConfig().key == key
    pairs = tuple(sorted(dataclasses.asdict(QUICK_TIMING).items()))   # the older (name, value) pairs shape
    assert RuntimeConfig(timing=pairs) == RuntimeConfig() and RuntimeConfig(timing=pairs).key == key


@pytest.mark.parametrize("field, value, message", [("blocks", 0, "blocks must be >= 1, got 0"),
                                                    ("timeout_s", 0.0, "timeout_s must be > 0"),
                                                    ("warmup_s", -1.0, "warmup_s must be >= 0")])
def test_timing_is_checked_before_any_call(field, value, message):
    with pytest.raises(UsageError, match=message):
        TimingConfig(**{field: value})
    assert TimingConfig().to_pb().blocks == 0   # unset: the agent's default


def test_suspect_device_and_class_without_devices_are_logged(agent, caplog):
    with AgentClient(agent.address) as client:
        info = client.device_info()
    a, b = DeviceStatus(Device("a", agent.address, "cpu")), DeviceStatus(Device("b", agent.address, "cpu"))
    with caplog.at_level(logging.INFO, logger="fleetnas.host.fleet"):
        a.suspect("cut off", [a, b])
        assert "class cpu has no reachable device" not in caplog.text
        b.suspect("cut off", [a, b])
        assert "device class cpu has no reachable device left" in caplog.text
        a.connected(info)
    assert "device a answers again" in caplog.text and a.state == "idle" and a.fingerprint == info.cache_identity
