"""The hardware-in-the-loop suite: run once per board of a devices file.

    pytest -m hil --fleet devices.toml tests/hil          # or FLEETNAS_DEVICES=devices.toml

Every test here takes ``fleet_device`` / ``fleet_client`` from the fleetnas pytest plugin (fleetnas.host.pytest_plugin),
so it is parametrized per device, marked ``hil``, and skipped with the reason when no devices file is named.
tests/hil/test_plugin.py runs this file against real local agents.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fleetnas.host.pytest_plugin import HIL_TIMING, hil_timing, latency_problems

pytestmark = pytest.mark.hil

# The reference model is a 64x64, depth-2 MLP on one row: microseconds on a desktop, well under 50 ms on a
# Raspberry Pi 3 or a phone's little core. A median past that means the board or the agent is badly wrong.
REFERENCE_MAX_MEDIAN_MS = 50.0
EXPECT_RUNS = HIL_TIMING["blocks"] * HIL_TIMING["min_runs_per_block"]
MAX_CLOCK_OFFSET_S = 300.0   # journals order measurements by the agents' clocks


def test_device_reports_its_identity_runtimes_and_state(fleet_device, fleet_client):
    asked_ns = time.time_ns()
    info = fleet_client.device_info()
    fp = info.fingerprint
    assert info.device_id and info.agent_version, "agent sent no device id / version"
    assert fp.machine and fp.cpu_count_logical >= 1 and fp.ram_bytes > 0, f"implausible fingerprint: {fp}"
    assert info.fingerprint_sha256 and len(info.fingerprint_sha256) == 64
    onnx = [r for r in info.runtimes if r.name == "onnxruntime"]
    assert onnx and onnx[0].available, f"onnxruntime unavailable on {fleet_device.name}: {onnx[0].message if onnx else ''}"
    assert info.state.captured_unix_ns > 0
    offset_s = abs(info.clock_unix_ns - asked_ns) / 1e9
    assert offset_s < MAX_CLOCK_OFFSET_S, (
        f"{fleet_device.name}'s clock is {offset_s:.0f} s off the host's: enable NTP on the board "
        f"(timedatectl set-ntp true)")
    assert not info.emulated, f"{fleet_device.name} is an emulating agent, not a board"


def test_reference_model_measures_within_sanity_bounds(fleet_device, fleet_client, fleet_reference_model,
                                                       fleet_tolerance):
    from fleetnas.agent.v1 import agent_pb2 as pb
    sha, _ = fleet_client.ensure_model(fleet_reference_model)
    first = fleet_client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=hil_timing(),
                                 request_id=f"hil-{fleet_device.name}-1")
    problems = latency_problems(first, max_median_ms=REFERENCE_MAX_MEDIAN_MS, expect_runs=EXPECT_RUNS,
                                allow_unstable=fleet_tolerance.allow_unstable)
    assert not problems, f"{fleet_device.name}: " + "; ".join(problems)
    assert first.model_sha256 == sha and first.request_id == f"hil-{fleet_device.name}-1"
    assert first.config.intra_op_threads == 1 and first.config.runtime == "onnxruntime"
    # Repeatability: the same model twice on an idle board should agree within a factor of two; a board far
    # outside that is throttling or is being used by something else.
    second = fleet_client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=hil_timing())
    assert not latency_problems(second, max_median_ms=REFERENCE_MAX_MEDIAN_MS,
                                allow_unstable=fleet_tolerance.allow_unstable)
    ratio = second.overall.median_ms / first.overall.median_ms
    limit = fleet_tolerance.max_repeat_ratio
    assert 1 / limit <= ratio <= limit, f"{fleet_device.name}: medians {first.overall.median_ms:.4f} vs " \
                                f"{second.overall.median_ms:.4f} ms: the board is not measuring repeatably"


def test_litert_reference_model_where_litert_is_installed(fleet_device, fleet_client, fleet_tolerance, tmp_path):
    info = fleet_client.device_info()
    litert = [r for r in info.runtimes if r.name == "litert" and r.available]
    if not litert:
        pytest.skip(f"LiteRT is not installed on {fleet_device.name}")
    from fleetnas.agent.errors import RuntimeUnavailable
    from fleetnas.agent.measure.reference_model import write_reference_model
    from fleetnas.agent.v1 import agent_pb2 as pb
    try:
        path = write_reference_model(tmp_path, "tflite")
    except RuntimeUnavailable as exc:
        pytest.skip(f"this host cannot build the .tflite reference model: {exc}")
    sha, _ = fleet_client.ensure_model(path)
    r = fleet_client.measure(sha, runtime="litert", options=pb.RuntimeOptions(threads=1), timing=hil_timing())
    problems = latency_problems(r, max_median_ms=REFERENCE_MAX_MEDIAN_MS, expect_runs=EXPECT_RUNS,
                                allow_unstable=fleet_tolerance.allow_unstable)
    assert not problems, f"{fleet_device.name}: " + "; ".join(problems)
    assert r.config.runtime == "litert"


def search_command_exists() -> bool:
    from importlib.util import find_spec
    return find_spec("fleetnas.host.commands.search") is not None


def test_short_search_on_the_tiny_supernet_gives_a_front_for_the_device(fleet_device, fleet_client, tmp_path):
    if not search_command_exists():
        pytest.skip("needs fleetnas search (issue 6)")
    devices = tmp_path / "devices.toml"
    devices.write_text(device_toml(fleet_device))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fleetnas.host.cli", "search", "--supernet", "tiny", "--devices", str(devices),
           "--objectives", "accuracy,latency", "--budget", "8", "--seed", "0", "--out", str(out), "--no-progress",
           # A fresh cache: every candidate is really measured on this board, not read from an earlier run.
           "--measurement-cache", str(tmp_path / "measurements.sqlite")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "report", str(out), "--json"],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["candidates_evaluated"] >= 8 and data["measurements"] >= 1, data
    front = data["fronts"][fleet_device.device_class]
    assert front, f"no Pareto front for class {fleet_device.device_class}"


def device_toml(device) -> str:
    lines = ["[[device]]", f'name = "{device.name}"', f'address = "{device.address}"',
             f'class = "{device.device_class}"']
    for key in ("token_file", "tls_ca", "tls_cert", "tls_key", "tls_server_name"):
        value = getattr(device, key)
        if value:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"

