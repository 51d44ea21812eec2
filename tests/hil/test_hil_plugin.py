"""The fleetnas pytest plugin, run for real: pytest in a subprocess, the HIL suite, real agent processes on 127.0.0.1.

Each case runs tests/hil/test_fleet_devices.py the way CI on a self-hosted runner would (`pytest -m hil --fleet F`)
and reads pytest's own verdicts (-rA) back.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent_process import agent_process

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "hil" / "test_fleet_devices.py"


def run_pytest(*args: str, env_extra=None, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FLEETNAS_DEVICES"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout_s)


def verdicts(output: str) -> dict:
    """{'PASSED': [...ids], 'SKIPPED': [...], ...} from pytest's -rA short summary."""
    found: dict = {}
    for kind, rest in re.findall(r"^(PASSED|FAILED|SKIPPED|ERROR) (.*)$", output, flags=re.M):
        found.setdefault(kind, []).append(rest)
    return found


def devices_file(path: Path, *devices) -> Path:
    blocks = []
    for name, cls, address, token_file in devices:
        block = f'[[device]]\nname = "{name}"\naddress = "{address}"\nclass = "{cls}"\n'
        if token_file:
            block += f'token_file = "{token_file}"\n'
        blocks.append(block)
    path.write_text("\n".join(blocks))
    return path


def test_plugin_is_registered_and_imports_nothing_heavy():
    from importlib.metadata import entry_points
    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
    assert any(e.value == "fleetnas.host.pytest_plugin" for e in group), "pip install -e . --no-deps after pyproject"
    code = ("import sys, fleetnas.host.pytest_plugin; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'grpc', 'numpy', 'onnxruntime'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_without_devices_every_fleet_test_is_selected_by_hil_and_skipped_with_the_reason(tmp_path):
    # A user's test that takes fleet_device without the marker: the plugin marks it hil, so `-m hil` selects it
    # (and pyproject's default `-m 'not hil'` leaves it out).
    unmarked = tmp_path / "test_users_board.py"
    unmarked.write_text("def test_my_board(fleet_device):\n    assert fleet_device.name\n")
    proc = run_pytest("-m", "hil", str(SUITE), str(unmarked))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = verdicts(proc.stdout)
    assert set(got) == {"SKIPPED"}, proc.stdout
    assert "no devices named: pass --fleet devices.toml or set FLEETNAS_DEVICES" in proc.stdout
    assert "5 skipped" in proc.stdout, proc.stdout


def test_suite_passes_against_a_local_agent(tmp_path):
    with agent_process(tmp_path / "a", token="token-a") as a:
        fleet = devices_file(tmp_path / "devices.toml", ("local-a", "x86-ci", a.address, a.token_file))
        # --fleet-noisy: this "board" is a 2-core machine shared with other jobs (UNSTABLE is expected there).
        # LiteRT and the search (~40 s) are left to the slow test below: the plugin's checks are under test here.
        proc = run_pytest("-m", "hil", "-k", "not litert and not search", "--fleet", str(fleet), "--fleet-noisy",
                          str(SUITE))
    out = proc.stdout
    assert proc.returncode == 0, out[-5000:] + proc.stderr[-2000:] + a.log()[-2000:]
    passed = verdicts(out).get("PASSED", [])
    assert any("test_device_reports_its_identity_runtimes_and_state[local-a]" in p for p in passed), out
    assert any("test_reference_model_measures_within_sanity_bounds[local-a]" in p for p in passed), out


def test_each_device_gets_its_own_verdict_from_the_environment_variable(tmp_path):
    # One live agent, the same agent with a wrong token, and 127.0.0.1:9 where nothing listens. A named board that
    # does not answer (or refuses us) is an error, not a skip, and does not hide the others' verdicts.
    with agent_process(tmp_path / "a", token="right") as a:
        wrong = tmp_path / "wrong.token"
        wrong.write_text("wrong\n")
        fleet = devices_file(tmp_path / "devices.toml", ("local-a", "x86-ci", a.address, a.token_file),
                             ("locked-01", "x86-ci", a.address, wrong), ("gone-01", "rpi5", "127.0.0.1:9", None))
        proc = run_pytest("-m", "hil", "-k", "identity", "--fleet-connect-timeout", "3", str(SUITE),
                          env_extra={"FLEETNAS_DEVICES": str(fleet)})
    out = proc.stdout
    assert proc.returncode == 1, out
    got = verdicts(out)
    assert len(got.get("PASSED", [])) == 1 and "[local-a]" in got["PASSED"][0], out
    assert sorted(e.split("[")[1].split("]")[0] for e in got.get("ERROR", [])) == ["gone-01", "locked-01"], out
    assert f"device locked-01 ({a.address})" in out and "wrong token" in out, out
    assert "device gone-01 (127.0.0.1:9)" in out and "not reachable" in out, out


@pytest.mark.slow
def test_whole_suite_against_two_local_agents(tmp_path):
    with agent_process(tmp_path / "a", token="token-a") as a, agent_process(tmp_path / "b", token="token-b") as b:
        fleet = devices_file(tmp_path / "devices.toml", ("local-a", "x86-ci", a.address, a.token_file),
                             ("local-b", "x86-ci-2", b.address, b.token_file))
        proc = run_pytest("-m", "hil", "--fleet", str(fleet), "--fleet-noisy", str(SUITE), timeout_s=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    passed = " ".join(verdicts(proc.stdout).get("PASSED", []))
    for device in ("local-a", "local-b"):
        for test in ("identity_runtimes_and_state", "within_sanity_bounds", "where_litert_is_installed",
                     "gives_a_front_for_the_device"):
            assert f"{test}[{device}]" in passed, proc.stdout


def test_a_bad_devices_file_stops_the_run_with_the_file_and_the_fix_named(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text("[[device]]\nname = 'x'\n")
    proc = run_pytest("-m", "hil", "--fleet", str(path), str(SUITE))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"fleetnas: --fleet: {path}: device #1: missing address" in out, out
