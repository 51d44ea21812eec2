"""SIGTERM during a measurement: `fleetnas-agent serve` cancels the running worker within seconds, answers its caller
with UNAVAILABLE saying it is shutting down, exits, and leaves no worker process behind. A real agent process."""
import signal
import threading
import time

from agent_fault_kit import agent_process, quick_timing, small_model, workers_of
from fleetnas.agent.measure.worker import TEST_HOOK_ENV
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import WireClient


def test_sigterm_cancels_the_running_measurement_and_answers_unavailable(tmp_path):
    agent = agent_process(tmp_path, env={TEST_HOOK_ENV: "hang"})  # every worker hangs once the model is loaded
    try:
        client = WireClient(f"127.0.0.1:{agent.port}", timeout_s=30)
        sha, _ = client.ensure_model(small_model(tmp_path / "m"))
        answer = {}

        def call():
            try:
                answer["response"] = client.measure(sha, options=pb.RuntimeOptions(threads=1),
                                                    timing=quick_timing(timeout_s=120), timeout_s=150)
            except AgentCallError as exc:
                answer["error"] = exc
            answer["at"] = time.monotonic()
        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 30
        while not workers_of(agent.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the worker is in its endless loop now
        assert workers_of(agent.pid), "the measurement never started a worker"
        sent = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        caller.join(timeout=30)
        agent.wait(timeout=30)
        answered_s, exited_s = answer["at"] - sent, time.monotonic() - sent
        err = answer.get("error")
        assert err is not None, answer
        assert err.code == "UNAVAILABLE" and "shutting down" in str(err), err
        assert answered_s < 5, f"caller answered {answered_s:.1f} s after SIGTERM"
        assert exited_s < 10, f"agent exited {exited_s:.1f} s after SIGTERM"
        assert agent.returncode == 0
        time.sleep(0.5)
        assert not workers_of(agent.pid), "worker processes outlived the agent"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_shutdown_during_a_cool_down_answers_at_once(tmp_path, monkeypatch):
    """A hot board makes the next measurement wait (up to 120 s) for the cool-down; stopping cancels that wait too."""
    from agent_fault_kit import fault_agent
    from fleetnas.agent.app import hygienic_measure_fn
    from fleetnas.agent.rpc.server import stop_server

    zone = tmp_path / "sysfs" / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("40000\n")
    monkeypatch.setenv("FLEETNAS_SYSFS_ROOT", str(tmp_path / "sysfs"))
    with fault_agent(tmp_path / "agent", measure_fn=hygienic_measure_fn(tmp_path / "agent")) as agent:
        client = agent.client()
        sha, _ = client.ensure_model(small_model(tmp_path / "m"))
        client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=quick_timing())  # idle = 40 °C
        (zone / "temp").write_text("80000\n")  # now hot: the next measurement waits to cool down
        answer = {}

        def call():
            try:
                answer["response"] = client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=quick_timing(),
                                                    timeout_s=30)
            except AgentCallError as exc:
                answer["error"] = exc
            answer["at"] = time.monotonic()
        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(1.5)
        assert "at" not in answer, "the measurement did not wait for the cool-down"
        sent = time.monotonic()
        stop_server(agent.server, agent.service, grace_s=5.0)
        caller.join(timeout=40)
    err = answer.get("error")
    assert err is not None and err.code == "UNAVAILABLE" and "shutting down" in str(err), answer
    assert answer["at"] - sent < 5, answer["at"] - sent
