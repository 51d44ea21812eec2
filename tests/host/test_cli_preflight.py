"""`fleetnas search` checks the fleet before it starts, from each agent's own device report: energy needs a readable
power sensor on every device (refused up front, naming the devices), and two devices with the same fingerprint (one
machine contending for its CPUs) are warned about. Real agents on loopback; boards are fake sysfs trees
($FLEETNAS_SYSFS_ROOT), one of them with a Jetson INA3221 power monitor."""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
from agent_harness import running_agent
from cli_subprocess import assert_no_traceback, run_cli

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.devices import parse_devices
from fleetnas.host.fleet.formats import ask_fleet
from fleetnas.host.run.preflight import device_reports, preflight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))  # the agent tests' fake sysfs trees
from sysfs_tree import make_board_tree, write  # noqa: E402

HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"


def board(root: Path, model: str, sensor: bool) -> Path:
    make_board_tree(root)
    write(root, "/proc/device-tree/model", model + "\x00")
    if sensor:
        for rel, text in {"in1_label": "VDD_IN", "in1_input": "5000", "curr1_input": "1000"}.items():
            write(root, f"{HWMON}/{rel}", text + "\n")
    return root


@contextlib.contextmanager
def agents_on(tmp_path, monkeypatch, boards):
    """One real agent per (name, sysfs root or None for this machine)."""
    with contextlib.ExitStack() as stack:
        started = []
        for name, root in boards:
            if root is None:
                monkeypatch.delenv("FLEETNAS_SYSFS_ROOT", raising=False)
            else:
                monkeypatch.setenv("FLEETNAS_SYSFS_ROOT", str(root))
            started.append((name, stack.enter_context(running_agent(tmp_path / f"agent-{name}"))))
        monkeypatch.delenv("FLEETNAS_SYSFS_ROOT", raising=False)
        toml = "".join(f'[[device]]\nname = "{n}"\naddress = "{a.address}"\nclass = "{n}"\n\n' for n, a in started)
        (tmp_path / "devices.toml").write_text(toml)
        yield tmp_path / "devices.toml"


def test_energy_search_is_refused_up_front_naming_the_devices_without_a_sensor(tmp_path, monkeypatch):
    boards = [("pi-a", board(tmp_path / "a", "Board A", sensor=False)),
              ("jetson-b", board(tmp_path / "b", "Board B", sensor=True))]
    with agents_on(tmp_path, monkeypatch, boards) as devices:
        reports = {r.name: r for r in device_reports(ask_fleet(parse_devices(devices.read_text(), devices)))}
        assert reports["jetson-b"].readable_sensors and not reports["pi-a"].readable_sensors
        out = tmp_path / "run"
        r = run_cli(["search", "--supernet", "tiny", "--devices", devices, "--objectives", "accuracy,latency,energy",
                     "--budget", "2", "--out", out], env={"FLEETNAS_CACHE_DIR": str(tmp_path / "cache")})
    assert_no_traceback(r)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --objectives with energy")
    assert "pi-a (no power sensor)" in lines[0] and "jetson-b" not in lines[0]
    assert not (out / "run.json").exists()   # nothing was searched


def test_devices_sharing_a_fingerprint_are_warned_about_and_distinct_boards_are_not(tmp_path, monkeypatch):
    boards = [("one", board(tmp_path / "a", "Board A", sensor=True)),
              ("two", board(tmp_path / "b", "Board A", sensor=True)),
              ("third", board(tmp_path / "c", "Board C", sensor=True))]
    with agents_on(tmp_path, monkeypatch, boards) as devices:
        stream = io.StringIO()
        preflight(parse_devices(devices.read_text(), devices), ("accuracy", "latency", "energy"), "onnxruntime",
                  stream=stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: devices one, two report the same fingerprint")
    assert "third" not in lines[0]


def test_energy_refusal_also_holds_for_the_library_call(tmp_path, monkeypatch):
    with agents_on(tmp_path, monkeypatch, [("bare", board(tmp_path / "a", "Board A", sensor=False))]) as devices:
        with pytest.raises(UsageError, match=r"bare \(no power sensor\)"):
            preflight(parse_devices(devices.read_text(), devices), ("accuracy", "latency", "energy"), "onnxruntime")


def test_a_search_on_one_machine_twice_warns_and_still_runs(tmp_path, monkeypatch):
    """Two agents on this machine: same fingerprint. The search warns once, then runs to its front."""
    with agents_on(tmp_path, monkeypatch, [("cpu-1", None), ("cpu-2", None)]) as devices:
        r = run_cli(["search", "--supernet", "tiny", "--devices", devices, "--budget", "1", "--out", tmp_path / "run",
                     "--no-measurement-cache", "--blocks", "2", "--min-runs", "3", "--min-block-s", "0.02",
                     "--warmup-s", "0.02"], env={"FLEETNAS_CACHE_DIR": str(tmp_path / "cache")}, timeout_s=600)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr[-2000:]
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: devices")]
    assert len(warnings) == 1 and "cpu-1, cpu-2" in warnings[0]
    assert "cpu-1: front of 1" in r.stdout and "cpu-2: front of 1" in r.stdout
