"""`fleetnas-agent serve | info | selftest` as a user runs them: real processes, real ports."""
import json
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from fleetnas.agent.measure.reference_model import write_reference_model
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import WireClient as AgentClient, outcome_name

AGENT = [sys.executable, "-m", "fleetnas.agent.cli"]


def start_serve(tmp_path, *extra):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([*AGENT, "serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                             "--cache-dir", str(tmp_path / "cache"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"agent did not start: {proc.communicate()[1]}")
        time.sleep(0.05)
    return proc, f"127.0.0.1:{port_file.read_text().strip()}"


def test_serve_logs_one_line_per_request_and_stops_on_sigterm(tmp_path):
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    proc, address = start_serve(tmp_path, "--token-file", str(token))
    try:
        with AgentClient(address, token="tok-123") as client:
            sha, _ = client.ensure_model(write_reference_model(tmp_path, "onnx", width=16))
            from fleetnas.agent.v1 import agent_pb2 as pb
            r = client.measure(sha, timing=pb.TimingConfig(warmup_runs=1, warmup_s=0.01, blocks=2,
                                                           min_runs_per_block=3, min_block_s=0.01))
            assert outcome_name(r) in ("OK", "UNSTABLE") and r.overall.n > 0
        with AgentClient(address) as anonymous, pytest.raises(AgentCallError, match="requires a token"):
            anonymous.list_models()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"serving on {address}" in out
    for method in ("HasModel", "UploadModel", "Measure"):
        assert f"{method} from " in err, err
    assert "ListModels from ipv4:127.0.0.1" in err and "UNAUTHENTICATED this agent requires a token" in err


def test_a_stop_signal_taken_by_another_thread_still_stops_the_agent():
    # the kernel hands a process's SIGTERM to any of its threads; here it lands on a worker thread on purpose
    import threading

    from fleetnas.agent.cli import _stop_on_signals, _wait_for_stop
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop = _stop_on_signals()
        worker_ready, release = threading.Event(), threading.Event()

        def worker():
            worker_ready.set()
            release.wait(10)
        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        worker_ready.wait(5)
        killer = threading.Timer(0.3, signal.pthread_kill, (thread.ident, signal.SIGTERM))
        killer.start()
        started = time.monotonic()
        _wait_for_stop(stop)  # in the main thread, as the agent's
        assert stop.is_set() and time.monotonic() - started < 5
        release.set()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_bad_flags_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    out = subprocess.run([*AGENT, "serve", "--listen", "127.0.0.1:0", "--token-file", str(empty),
                          "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("error: token file") and "Traceback" not in out.stderr
    out = subprocess.run([*AGENT, "serve", "--listen", "nonsense", "--cache-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--listen must be HOST:PORT" in out.stderr


def test_a_taken_port_is_one_line_not_a_traceback(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([*AGENT, "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and out.stdout == ""
    assert out.stderr == (f"error: cannot listen on 127.0.0.1:{port}: address already in use; "
                          "pick another --listen port\n")


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:", "127.0.0.1:http"])
def test_a_malformed_listen_address_is_refused_not_served_elsewhere(tmp_path, listen):
    out = subprocess.run([*AGENT, "serve", "--listen", listen, "--cache-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.splitlines()) == 1, out.stderr
    assert "--listen must be HOST:PORT with a port in 0-65535" in out.stderr and repr(listen) in out.stderr


def test_info_json_lists_runtimes_and_state(tmp_path):
    out = subprocess.run([*AGENT, "info", "--json", "--cache-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=60, check=True)
    info = json.loads(out.stdout)
    assert {r["name"] for r in info["runtimes"]} >= {"onnxruntime", "litert"}
    assert info["fingerprint"]["cpu_count_logical"] >= 1 and len(info["fingerprint_sha256"]) == 64
    text = subprocess.run([*AGENT, "info", "--cache-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    assert info["device_id"] in text and "runtime  onnxruntime" in text


def test_selftest_measures_the_reference_model_with_each_runtime():
    out = subprocess.run([*AGENT, "selftest", "--json"], capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["ok"], out.stdout + out.stderr
    measured = {r["runtime"]: r for r in report["runtimes"] if r["available"] and "outcome" in r}
    assert set(measured) == {"onnxruntime", "litert"}
    assert all(r["outcome"] in ("OK", "UNSTABLE") and r["median_ms"] > 0 for r in measured.values())
    # ExecuTorch, where installed: no reference .pte can be built without torch, and the report says so
    skipped = {r["runtime"]: r["message"] for r in report["runtimes"] if r["available"] and "outcome" not in r}
    assert all("no built-in reference model in pte" in m for m in skipped.values()), skipped


def test_selftest_prints_the_median_it_measured():
    out = subprocess.run([*AGENT, "selftest"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    for runtime in ("onnxruntime", "litert"):
        assert re.search(r": median \d+\.\d{3} ms, (OK|UNSTABLE)", lines[runtime]), lines[runtime]
    assert out.stdout.rstrip().endswith("selftest passed")


def test_reflection_lists_the_agent_service(agent):
    import grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
    with grpc.insecure_channel(agent.address) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "fleetnas.agent.v1.Agent" in services and "grpc.health.v1.Health" in services


def test_deadline_is_honoured_while_queued(agent, tmp_path):
    """A call whose deadline passes in the queue is answered DEADLINE_EXCEEDED and never run."""
    import threading
    from fleetnas.agent.v1 import agent_pb2 as pb
    client = agent.client()
    sha, _ = client.ensure_model(write_reference_model(tmp_path, "onnx", width=16))
    slow = pb.TimingConfig(warmup_runs=1, warmup_s=0.01, blocks=2, min_runs_per_block=3, min_block_s=1.5)
    first = threading.Thread(target=client.measure, args=(sha,), kwargs=dict(timing=slow))
    first.start()
    time.sleep(0.5)
    with pytest.raises(AgentCallError) as err:
        client.measure(sha, timing=slow, timeout_s=1.0)
    assert err.value.code == "DEADLINE_EXCEEDED"
    first.join()
    time.sleep(0.3)
    assert client.device_info().measurements_done == 1
