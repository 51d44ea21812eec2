"""Emulation mode: metadata read without the onnx package, table lookup, sleeping, the CLI flags, a real gRPC agent."""
import json
import subprocess
import sys
import time

import pytest
from fleet_helpers import config_model, emulated_agents, toy_table, write_table

from fleetnas.agent.measure.emulate import (EmulationError, EmulationTable, emulated_duration_s, make_emulated_measure_fn,
                                    onnx_metadata)
from fleetnas.agent.records import MeasureJob, EnergyConfig, Outcome, RuntimeOptions, TimingConfig

TIMING = TimingConfig(warmup_runs=2, warmup_s=0.01, blocks=3, min_runs_per_block=5, min_block_s=0.02)


def test_metadata_matches_onnx_package(tmp_path):
    import onnx
    path = config_model(tmp_path, {"width": 16, "depth": 2})
    expected = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert onnx_metadata(path.read_bytes()) == expected
    assert json.loads(expected["fleetnas.config"]) == {"depth": 2, "width": 16}


def test_measure_returns_table_latency_and_sleeps_like_a_run(tmp_path):
    table = EmulationTable.from_csv(toy_table(tmp_path / "t.csv"), ["width", "depth"], "lat_ms", "energy_mj")
    slept = []
    fn = make_emulated_measure_fn(table, sleep=slept.append)
    r = fn(MeasureJob(config_model(tmp_path, {"width": 32, "depth": 2}), "onnx", "onnxruntime", RuntimeOptions(),
                      TIMING, EnergyConfig(enabled=True)))
    assert r.outcome is Outcome.OK and r.emulated
    assert r.overall.median_ms == pytest.approx(0.64)
    assert r.overall.n == 3 * 32  # 0.02 s / 0.64 ms -> 32 runs per block
    assert r.energy.energy_mj == pytest.approx(1.28) and r.energy.mean_power_w == pytest.approx(2.0)
    assert slept == [pytest.approx(emulated_duration_s(0.64, TIMING)[0])]
    assert slept[0] == pytest.approx(0.64e-3 * (16 + 3 * 32))


def test_unknown_config_and_missing_metadata_are_load_failed_results(tmp_path):
    import onnx
    table = EmulationTable.from_csv(toy_table(tmp_path / "t.csv"), ["width", "depth"], "lat_ms")
    fn = make_emulated_measure_fn(table, time_scale=0)
    r = fn(MeasureJob(config_model(tmp_path, {"width": 128, "depth": 1}), "onnx", "onnxruntime", RuntimeOptions(),
                      TIMING))
    assert r.outcome is Outcome.LOAD_FAILED and "not in t.csv" in r.message
    path = config_model(tmp_path, {"width": 8, "depth": 1})
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    r = fn(MeasureJob(path, "onnx", "onnxruntime", RuntimeOptions(), TIMING))
    assert r.outcome is Outcome.LOAD_FAILED and "no fleetnas.config" in r.message


def test_table_errors_name_the_problem(tmp_path):
    path = toy_table(tmp_path / "t.csv")
    with pytest.raises(EmulationError, match="no column\\(s\\) nope"):
        EmulationTable.from_csv(path, ["width", "nope"], "lat_ms")
    bad = write_table(tmp_path / "bad.csv", [{"width": 8, "lat_ms": "fast"}])
    with pytest.raises(EmulationError, match="bad.csv:2: lat_ms must be a number"):
        EmulationTable.from_csv(bad, ["width"], "lat_ms")


def test_emulating_agent_over_grpc(tmp_path):
    with emulated_agents(tmp_path, 1, time_scale=1.0) as (agent,):
        client = agent.client()
        sha, _ = client.ensure_model(config_model(tmp_path / "m", {"width": 64, "depth": 2}))
        from fleetnas.agent.v1 import agent_pb2 as pb
        t0 = time.monotonic()
        r = client.measure(sha, timing=pb.TimingConfig(warmup_runs=1, warmup_s=0.05, blocks=2,
                                                      min_runs_per_block=1, min_block_s=0.05))
        elapsed = time.monotonic() - t0
        assert r.emulated and r.overall.median_ms == pytest.approx(1.28)
        assert 0.14 < elapsed < 5.0   # slept ~0.15 s: warm-up 0.05 s + 2 blocks x 0.05 s


def test_cli_serve_emulate_flags(tmp_path):
    table = toy_table(tmp_path / "t.csv")
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0",
                             "--port-file", str(port_file), "--cache-dir", str(tmp_path / "cache"),
                             "--emulate", str(table), "--emulate-params", "width,depth", "--emulate-latency", "lat_ms"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert port_file.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no port file"
        from fleetnas.host.fleet.client import AgentClient
        with AgentClient(f"127.0.0.1:{port_file.read_text().strip()}") as client:
            assert client.device_info().emulated
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run([sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0",
                          "--cache-dir", str(tmp_path / "cache"), "--emulate", str(table)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--emulate needs --emulate-params" in bad.stderr
