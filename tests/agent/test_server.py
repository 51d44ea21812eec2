"""The agent over real gRPC on 127.0.0.1: uploads, store calls, measurement, errors, auth, TLS, restart."""
import hashlib
import threading
import time

import pytest

from agent_harness import FAST_TIMING, running_agent
from fleetnas.agent.measure.reference_model import build_onnx_bytes, write_reference_model
from fleetnas.agent.rpc.server import TlsFiles
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import outcome_name


MEASURED = ("OK", "UNSTABLE")  # UNSTABLE still carries every number; a loaded machine may flag a short run


def timing(**overrides):
    return pb.TimingConfig(**{**FAST_TIMING, **overrides})


@pytest.fixture
def onnx_path(tmp_path):
    return write_reference_model(tmp_path / "models", "onnx", width=32)


def test_upload_is_content_addressed_and_skipped_when_present(agent, onnx_path):
    client = agent.client()
    sha, uploaded = client.ensure_model(onnx_path)
    assert uploaded and sha == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert client.ensure_model(onnx_path) == (sha, False)
    listing = client.list_models()
    assert [m.sha256 for m in listing.models] == [sha] and listing.store.used_bytes == onnx_path.stat().st_size
    assert client.delete_model(sha) and not client.has_model(sha)


def test_measure_reports_statistics_state_and_exact_config(agent, onnx_path):
    client = agent.client()
    sha, _ = client.ensure_model(onnx_path)
    r = client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=timing(), request_id="req-1")
    assert outcome_name(r) in MEASURED, r.message
    assert r.request_id == "req-1" and r.model_sha256 == sha and r.device_id
    assert r.overall.n >= 15 and len(r.blocks) == 3
    assert 0 < r.overall.min_ms <= r.overall.median_ms <= r.overall.p90_ms <= r.overall.p99_ms <= r.overall.max_ms
    assert r.phases.load_ms > 0 and r.phases.first_inference_ms > 0 and r.phases.warmup_runs >= 2
    assert r.config.runtime == "onnxruntime" and r.config.runtime_version and r.config.intra_op_threads == 1
    assert r.config.inter_op_threads == 1 and r.config.input_shapes
    assert r.peak_rss_bytes > 10 * 2**20 and r.run_wall_ms > 0 and r.state_before.captured_unix_ns > 0
    assert not r.HasField("energy")  # not requested: absent, never zero


def test_litert_measures_a_tflite_model(agent, tmp_path):
    client = agent.client()
    sha, _ = client.ensure_model(write_reference_model(tmp_path, "tflite", width=32))
    r = client.measure(sha, runtime="litert", options=pb.RuntimeOptions(threads=1), timing=timing())
    assert outcome_name(r) in MEASURED, r.message
    assert r.config.runtime == "litert" and r.overall.median_ms > 0


@pytest.mark.parametrize("data,expect", [
    (lambda d: d[: len(d) // 3], "truncated"),
    (lambda d: b"\x89PNG\r\n\x1a\n" + bytes(200), "not a valid onnx model"),
    (lambda d: b"", "size_bytes must be > 0"),
])
def test_bad_uploads_are_invalid_argument_and_the_agent_lives_on(agent, tmp_path, onnx_path, data, expect):
    client = agent.client()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data(onnx_path.read_bytes()))
    with pytest.raises(AgentCallError, match=expect) as err:
        client.upload(bad)
    assert err.value.code == "INVALID_ARGUMENT"
    assert client.device_info().device_id  # still serving
    assert client.list_models().models == []


def test_sha256_mismatch_is_refused(agent, onnx_path):
    with pytest.raises(AgentCallError, match="model sha256 mismatch: expected 0000") as err:
        agent.client().upload(onnx_path, sha256="0" * 64)
    assert err.value.code == "INVALID_ARGUMENT"


def test_unknown_model_and_runtime_errors_say_what_to_do(agent, onnx_path):
    client = agent.client()
    with pytest.raises(AgentCallError, match="call UploadModel first") as err:
        client.measure("ab" * 32, timing=timing())
    assert err.value.code == "NOT_FOUND"
    sha, _ = client.ensure_model(onnx_path)
    with pytest.raises(AgentCallError, match="unknown runtime 'tvm'") as err:
        client.measure(sha, runtime="tvm", timing=timing())
    assert err.value.code == "INVALID_ARGUMENT"


def test_model_that_fails_to_load_is_a_typed_result(agent, tmp_path):
    # A valid ModelProto container (ir_version + graph field) around a graph the runtime cannot use.
    garbage = b"\x08\x08" + b"\x3a\x06" + b"\x0a\x04junk"
    path = tmp_path / "garbage.onnx"
    path.write_bytes(garbage)
    client = agent.client()
    sha, _ = client.ensure_model(path)
    r = client.measure(sha, timing=timing())
    assert outcome_name(r) == "LOAD_FAILED" and r.message
    assert client.device_info().device_id


def test_one_measurement_at_a_time_with_queue_wait_reported(agent, onnx_path):
    client = agent.client()
    sha, _ = client.ensure_model(onnx_path)
    results = {}

    def go(name):
        results[name] = client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=timing(min_block_s=0.4))
    first = threading.Thread(target=go, args=("first",))
    first.start()
    time.sleep(0.3)  # the first is running (its worker needs > 1.2 s) when the second arrives
    go("second")
    first.join()
    a, b = results["first"], results["second"]
    assert outcome_name(a) in MEASURED and outcome_name(b) in MEASURED
    assert b.started_unix_ns >= a.started_unix_ns + a.run_wall_ms * 1e6 * 0.99  # never overlapped
    assert b.queue_wait_ms >= a.run_wall_ms - 300 - 50  # and the second reports the time it queued


def test_token_auth(tmp_path, onnx_path):
    with running_agent(tmp_path / "a", token="s3cret") as agent:
        with pytest.raises(AgentCallError, match="requires a token") as err:
            agent.client().device_info()
        assert err.value.code == "UNAUTHENTICATED"
        with pytest.raises(AgentCallError, match="wrong token") as err:
            agent.client(token="guess").upload(onnx_path)  # streaming calls are guarded too
        assert err.value.code == "UNAUTHENTICATED"
        assert agent.client().health()  # health stays open for probes
        assert agent.client(token="s3cret").device_info().device_id


def test_tls_and_mutual_tls(tmp_path, onnx_path):
    from fleetnas.host.fleet.client import ClientTls
    from tls_certs import make_certs
    c = make_certs(tmp_path / "certs")
    with running_agent(tmp_path / "a", tls=TlsFiles(c["server_cert"], c["server_key"])) as agent:
        assert agent.client(tls=ClientTls(ca=c["ca"])).device_info().device_id
        with pytest.raises(AgentCallError) as err:  # plaintext against a TLS port
            agent.client().device_info(timeout_s=3)
        assert err.value.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    with running_agent(tmp_path / "b", tls=TlsFiles(c["server_cert"], c["server_key"], c["ca"])) as agent:
        with pytest.raises(AgentCallError) as err:
            agent.client(tls=ClientTls(ca=c["ca"])).device_info(timeout_s=3)
        mutual = agent.client(tls=ClientTls(ca=c["ca"], cert=c["client_cert"], key=c["client_key"]))
        assert mutual.ensure_model(onnx_path)[1]


def test_store_survives_a_restart(tmp_path, onnx_path):
    with running_agent(tmp_path / "a") as agent:
        sha, _ = agent.client().ensure_model(onnx_path)
        device = agent.client().device_info().device_id
    with running_agent(tmp_path / "a") as agent:
        client = agent.client()
        assert client.has_model(sha) and client.device_info().device_id == device
        assert outcome_name(client.measure(sha, timing=timing())) in MEASURED


def test_quota_eviction_over_grpc(tmp_path):
    models = [build_onnx_bytes(width=32, seed=s) for s in range(3)]
    with running_agent(tmp_path / "a", quota_bytes=int(2.5 * len(models[0]))) as agent:
        client = agent.client()
        for i, data in enumerate(models):
            path = tmp_path / f"m{i}.onnx"
            path.write_bytes(data)
            client.upload(path)
        listing = client.list_models()
        assert len(listing.models) == 2 and listing.store.used_bytes <= listing.store.quota_bytes


def test_device_info_describes_the_board(agent):
    info = agent.client().device_info()
    assert info.fingerprint.cpu_count_logical >= 1 and info.fingerprint.ram_bytes > 0
    assert len(info.fingerprint_sha256) == 64 and info.clock_unix_ns > 0
    names = {r.name: r for r in info.runtimes}
    assert names["onnxruntime"].available and "CPUExecutionProvider" in names["onnxruntime"].execution_providers
    assert "litert" in names
    # the host picks the exporter from these, so it never keeps its own runtime -> format table
    assert list(names["onnxruntime"].formats) == [pb.MODEL_FORMAT_ONNX]
    assert list(names["litert"].formats) == [pb.MODEL_FORMAT_TFLITE]


@pytest.mark.parametrize("hook,outcome,timeout_s", [("segfault", "CRASHED", 60.0), ("hang", "TIMEOUT", 3.0)])
def test_crashing_or_hanging_worker_is_a_typed_result_and_the_agent_lives_on(agent, onnx_path, monkeypatch,
                                                                             hook, outcome, timeout_s):
    from fleetnas.agent.measure.worker import TEST_HOOK_ENV
    client = agent.client()
    sha, _ = client.ensure_model(onnx_path)
    # a first normal run takes the drift canary's baseline, so the hooked run below is the only worker started
    assert outcome_name(client.measure(sha, timing=timing())) in MEASURED
    monkeypatch.setenv(TEST_HOOK_ENV, hook)  # the agent's own environment: no request can set it
    r = client.measure(sha, timing=timing(timeout_s=timeout_s))
    assert outcome_name(r) == outcome, r.message
    if hook == "segfault":
        assert r.crash_signal == 11 and "SIGSEGV" in r.message
    monkeypatch.delenv(TEST_HOOK_ENV)
    assert outcome_name(client.measure(sha, timing=timing())) in MEASURED  # and the agent serves on


def test_energy_without_a_sensor_is_absent_with_the_reason(agent, onnx_path):
    """This CI machine has no power sensor: energy must be absent (not zero) and say why."""
    info = agent.client().device_info()
    if any(s.readable for s in info.power_sensors):
        pytest.skip("this machine has a readable power sensor")
    client = agent.client()
    sha, _ = client.ensure_model(onnx_path)
    r = client.measure(sha, timing=timing(), energy=True)
    assert outcome_name(r) in MEASURED and not r.HasField("energy")
    assert "no power sensor" in r.energy_unavailable_reason


def test_request_id_makes_measure_idempotent_across_retries(agent, onnx_path):
    """A host that lost its answer (killed, reconnected) and asks again gets the same measurement, not a new one."""
    client = agent.client()
    sha, _ = client.ensure_model(onnx_path)
    slow = timing(min_block_s=0.3)
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", client.measure(
        sha, timing=slow, request_id="cfg-1@cpu")))
    first.start()
    time.sleep(0.3)  # the retry arrives while the first is still measuring
    retry = agent.client().measure(sha, timing=slow, request_id="cfg-1@cpu")
    first.join()
    again = client.measure(sha, timing=slow, request_id="cfg-1@cpu")  # and after it finished
    assert retry.started_unix_ns == results["first"].started_unix_ns == again.started_unix_ns
    assert client.device_info().measurements_done == 1
    other = client.measure(sha, timing=slow, request_id="cfg-2@cpu")
    assert other.started_unix_ns != retry.started_unix_ns and client.device_info().measurements_done == 2


def test_replay_only_answers_a_remembered_measurement_and_measures_nothing(agent, onnx_path):
    client = agent.client()
    sha, _ = client.ensure_model(onnx_path)
    with pytest.raises(AgentCallError, match="no measurement of request 'cfg-9@cpu'") as err:
        client.measure(sha, timing=timing(), request_id="cfg-9@cpu", replay_only=True)
    assert err.value.code == "NOT_FOUND"
    first = client.measure(sha, timing=timing(), request_id="cfg-9@cpu")
    replayed = client.measure(sha, timing=timing(), request_id="cfg-9@cpu", replay_only=True)
    assert replayed.started_unix_ns == first.started_unix_ns
    assert client.device_info().measurements_done == 1
