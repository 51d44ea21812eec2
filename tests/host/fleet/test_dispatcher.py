"""The dispatcher against real in-process agents on loopback (emulating ones where timing is not the point)."""
import time

import pytest
from fleet_helpers import config_key, config_model, devices_toml, emulated_agents

from fleetnas.host.fleet.devices import parse_devices
from fleetnas.host.fleet.client import AgentClient
from fleetnas.host.fleet.contract import RuntimeConfig, TimingConfig
from fleetnas.host.fleet.dispatcher import Dispatcher, Job
from fleetnas.host.fleet.measurements import MeasurementStore

CONFIGS = [{"width": w, "depth": d} for w in (8, 16, 32, 64) for d in (1, 2)]
QUICK = RuntimeConfig(timing=TimingConfig(warmup_runs=1, warmup_s=0.01, blocks=2, min_runs_per_block=2,
                                          min_block_s=0.01, timeout_s=60.0))


def _jobs(tmp_path, device_class="cpu", configs=CONFIGS):
    from fleetnas.host.fleet.client import file_sha256
    jobs = []
    for c in configs:
        path = config_model(tmp_path / "models", c)
        jobs.append(Job(device_class, path, file_sha256(path), config_key(c)))
    return jobs


def _collect(dispatcher, n, timeout_s=60.0):
    results, deadline = [], time.monotonic() + timeout_s
    while len(results) < n and time.monotonic() < deadline:
        results += dispatcher.results(timeout_s=0.2)
    assert len(results) == n, f"{len(results)} of {n} results before the timeout"
    return results


def test_parallel_across_agents_upload_once_journal_and_cache(tmp_path):
    with emulated_agents(tmp_path, 2) as agents:
        reg = parse_devices(devices_toml(agents), tmp_path / "d.toml")
        journal, cache = MeasurementStore(tmp_path / "run.sqlite"), MeasurementStore(tmp_path / "cache.sqlite")
        jobs = _jobs(tmp_path)
        with Dispatcher(reg, QUICK, journal=journal, cache=cache) as d:
            for job in jobs:
                d.submit(job)
            results = _collect(d, len(jobs))
            assert d.pending == 0
            assert {r.job.config_key for r in results} == {j.config_key for j in jobs}
            assert all(r.measurement.ok and r.measurement.emulated for r in results)
            for r in results:
                c = r.measurement.config_key
                width_depth = [cfg for cfg in CONFIGS if config_key(cfg) == c][0]
                assert r.measurement.latency_ms == pytest.approx(width_depth["width"] * width_depth["depth"] / 100)
            by_device = {name: s.measured for name, s in d.status.items()}
            assert sum(by_device.values()) == len(jobs) and all(n > 0 for n in by_device.values()), by_device
            assert sum(s.uploads for s in d.status.values()) == len(jobs)   # each model to one agent, once
            # the same model again on the same agent: HasModel says present, no upload; the cache answers first
            d.submit(jobs[0])
            (again,) = _collect(d, 1)
            assert again.measurement.source == "cache"
            first = [r for r in results if r.job.config_key == jobs[0].config_key][0]
            assert again.measurement.latency_ms == first.measurement.latency_ms
        assert journal.count() == len(jobs) + 1 and journal.count("cache") == 1
        assert cache.count() == len(jobs)
        total_done = sum(a.service.queue_stats().measurements_done for a in agents)
        assert total_done == len(jobs)   # the cache hit measured nothing


def test_dead_agent_is_suspect_and_its_jobs_go_to_the_other(tmp_path):
    with emulated_agents(tmp_path, 2, time_scale=1.0) as agents:
        reg = parse_devices(devices_toml(agents), tmp_path / "d.toml")
        jobs = _jobs(tmp_path)
        with Dispatcher(reg, QUICK, backoff_s=(0.05, 0.2)) as d:
            for job in jobs[:2]:
                d.submit(job)
            _collect(d, 2)
            agents[1].stop()
            for job in jobs[2:]:
                d.submit(job)
            results = _collect(d, len(jobs) - 2)
            assert all(r.measurement.ok for r in results), [r.measurement.response for r in results]
            assert d.status["dev1"].state == "suspect" and "unreachable" in d.status["dev1"].last_error
            assert {r.measurement.device_name for r in results} == {"dev0"}


def test_class_without_reachable_device_gives_error_results(tmp_path):
    reg = parse_devices('[[device]]\nname = "ghost"\naddress = "127.0.0.1:1"\nclass = "gone"\n', tmp_path / "d.toml")
    jobs = _jobs(tmp_path, "gone", CONFIGS[:2])
    with Dispatcher(reg, QUICK, give_up_s=0.3, backoff_s=(0.05, 0.1), rpc_timeout_s=2.0) as d:
        for job in jobs:
            d.submit(job)
        results = _collect(d, 2, timeout_s=30)
    assert all(r.measurement.outcome == "ERROR" for r in results)
    assert "no device of class gone reachable" in results[0].measurement.response["message"]


def test_real_measurement_on_real_agent(tmp_path, agent):
    reg = parse_devices(devices_toml([agent]), tmp_path / "d.toml")
    (job,) = _jobs(tmp_path, configs=[{"width": 32, "depth": 2}])
    with Dispatcher(reg, RuntimeConfig()) as d:   # the default quick-but-methodical timing
        d.submit(job)
        (r,) = _collect(d, 1)
    m = r.measurement
    assert m.outcome in ("OK", "UNSTABLE"), m.response   # a busy shared 2-core box may be noisy
    assert m.latency_ms is None or m.latency_ms > 0
    assert m.outcome != "OK" or not m.emulated and m.latency_ms > 0 and m.device_fingerprint
    assert m.response["config"]["runtime"] == "onnxruntime" and int(m.response["overall"]["n"]) >= 4


def test_in_flight_job_of_a_dead_host_is_recovered_from_whichever_agent_measured_it(tmp_path):
    """A restarted host re-dispatches a candidate its predecessor had sent to dev1: the dispatcher asks the class's
    agents (replay_only) and takes dev1's measurement instead of measuring again, whichever worker picks the job."""
    from dataclasses import replace

    from fleetnas.host.fleet.dispatcher import request_id
    with emulated_agents(tmp_path, 2) as agents:
        reg = parse_devices(devices_toml(agents), tmp_path / "d.toml")
        job = _jobs(tmp_path)[0]
        with AgentClient(agents[1].address) as previous_host:   # what the dead host had done on dev1
            previous_host.ensure_model(job.model_path)
            earlier = previous_host.measure(job.model_sha256, QUICK, request_id=request_id(job, "run-a"))
        with Dispatcher(reg, QUICK, run_uid="run-a") as d:   # the same run, resumed
            d.submit(replace(job, recover=True))
            (result,) = _collect(d, 1)
        assert result.measurement.device_name == "dev1" and result.measurement.source == "measured"
        assert result.measurement.replayed
        assert result.measurement.response["started_unix_ns"] == str(earlier.started_unix_ns)
        assert [a.service.queue_stats().measurements_done for a in agents] == [0, 1]   # nothing measured twice


def test_model_format_comes_from_what_the_devices_report(tmp_path, agent):
    from fleetnas.host.errors import UsageError
    ghost = '[[device]]\nname = "ghost"\naddress = "127.0.0.1:1"\nclass = "cpu"\n'
    reg = parse_devices(devices_toml([agent]) + ghost, tmp_path / "d.toml")
    with Dispatcher(reg, RuntimeConfig(runtime="litert"), rpc_timeout_s=2.0) as d:
        assert d.model_formats() == ("tflite",)        # the unreachable peer does not hold it up
    with Dispatcher(reg, RuntimeConfig(runtime="tvm"), rpc_timeout_s=2.0) as d:
        with pytest.raises(UsageError, match="device dev0 does not offer runtime 'tvm'; it offers onnxruntime"):
            d.model_formats()
