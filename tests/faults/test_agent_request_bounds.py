"""Every numeric request field is checked (finite, within its documented bounds) before anything runs, and one
worker run never outlives the agent's own ceiling, whatever the request asks. Raw contract messages, real agent."""
import math
import time

import pytest

from agent_fault_kit import fault_agent, quick_timing, small_model
from fleetnas.agent.measure.worker import TEST_HOOK_ENV
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import outcome_name

NAN, INF = math.nan, math.inf
INT32_MAX = 2**31 - 1

# (field as named in the error, how to spoil the request)
BAD_MEASURE_FIELDS = [
    ("timing.timeout_s", dict(timing=dict(timeout_s=NAN))),
    ("timing.timeout_s", dict(timing=dict(timeout_s=INF))),
    ("timing.timeout_s", dict(timing=dict(timeout_s=-1.0))),
    ("timing.timeout_s", dict(timing=dict(timeout_s=1e300))),
    ("timing.warmup_s", dict(timing=dict(warmup_s=NAN))),
    ("timing.warmup_s", dict(timing=dict(warmup_s=INF))),
    ("timing.warmup_s", dict(timing=dict(warmup_s=1e300))),
    ("timing.min_block_s", dict(timing=dict(min_block_s=1e300))),
    ("timing.min_block_s", dict(timing=dict(min_block_s=-INF))),
    ("timing.min_block_s", dict(timing=dict(min_block_s=NAN))),
    ("timing.warmup_runs", dict(timing=dict(warmup_runs=INT32_MAX))),
    ("timing.warmup_runs", dict(timing=dict(warmup_runs=-1))),
    ("timing.blocks", dict(timing=dict(blocks=INT32_MAX))),
    ("timing.min_runs_per_block", dict(timing=dict(min_runs_per_block=INT32_MAX))),
    ("options.threads", dict(options=dict(threads=INT32_MAX))),
    ("options.threads", dict(options=dict(threads=-1))),
    ("options.cpu_affinity", dict(options=dict(cpu_affinity=[INT32_MAX]))),
    ("options.cpu_affinity", dict(options=dict(cpu_affinity=[-1]))),
    ("energy.min_window_s", dict(energy=dict(enabled=True, min_window_s=NAN))),
    ("energy.min_window_s", dict(energy=dict(enabled=True, min_window_s=1e300))),
    ("energy.idle_s", dict(energy=dict(enabled=True, idle_s=INF))),
    ("energy.idle_s", dict(energy=dict(enabled=False, idle_s=NAN))),
]


@pytest.fixture(scope="module")
def agent_and_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bounds")
    with fault_agent(tmp / "agent") as agent:
        sha, _ = agent.client().ensure_model(small_model(tmp / "m"))
        yield agent, sha


def _request(sha: str, spoil: dict) -> pb.MeasureRequest:
    timing = quick_timing(timeout_s=5.0)  # before the checks existed, a spoiled request still ended within seconds
    for k, v in spoil.get("timing", {}).items():
        setattr(timing, k, v)
    options = pb.RuntimeOptions(threads=1)
    for k, v in spoil.get("options", {}).items():
        if k == "cpu_affinity":
            options.cpu_affinity.extend(v)
        else:
            setattr(options, k, v)
    return pb.MeasureRequest(model_sha256=sha, runtime="onnxruntime", options=options, timing=timing,
                             energy=pb.EnergyConfig(**spoil.get("energy", {})))


@pytest.mark.parametrize("field,spoil", BAD_MEASURE_FIELDS,
                         ids=[f"{f}={list(s.values())[0]}" for f, s in BAD_MEASURE_FIELDS])
def test_every_bad_numeric_measure_field_is_invalid_argument_naming_it(agent_and_model, field, spoil):
    agent, sha = agent_and_model
    client = agent.client()
    with pytest.raises(AgentCallError) as err:
        client.measure_request(_request(sha, spoil), timeout_s=30)
    assert err.value.code == "INVALID_ARGUMENT", err.value
    assert field in str(err.value), err.value
    assert agent.service.queue_stats().measurements_done == 0  # refused before anything ran


@pytest.mark.parametrize("field,header", [
    ("header.size_bytes", dict(size_bytes=2**62)),
    ("header.size_bytes", dict(size_bytes=-1)),
    ("header.format", dict(size_bytes=100, format=99)),
])
def test_bad_numeric_upload_header_is_invalid_argument_naming_it(agent_and_model, field, header):
    agent, _ = agent_and_model
    stub_call = agent.client()._stub.UploadModel
    head = pb.UploadHeader(sha256="ab" * 32, **{"format": pb.MODEL_FORMAT_ONNX, **header})
    with pytest.raises(Exception) as err:
        stub_call(iter([pb.UploadModelRequest(header=head), pb.UploadModelRequest(chunk=b"x" * 100)]), timeout=10)
    assert err.value.code().name == "INVALID_ARGUMENT" and field in err.value.details(), err.value


def test_a_request_cannot_lift_the_agents_ceiling_on_a_run(tmp_path, monkeypatch):
    """A looping model with the request's default timeout (300 s) is killed at the agent's ceiling (2 s)."""
    with fault_agent(tmp_path / "agent", service={"max_measure_s": 2.0}) as agent:
        client = agent.client()
        sha, _ = client.ensure_model(small_model(tmp_path / "m"))
        monkeypatch.setenv(TEST_HOOK_ENV, "hang")
        start = time.monotonic()
        r = client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=quick_timing(timeout_s=0), timeout_s=60)
        took_s = time.monotonic() - start
        assert outcome_name(r) == "TIMEOUT" and "timeout_s=2" in r.message, r.message
        assert took_s < 15, took_s
        monkeypatch.delenv(TEST_HOOK_ENV)
        assert outcome_name(client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=quick_timing())) in (
            "OK", "UNSTABLE")
