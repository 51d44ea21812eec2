"""A board install (`pip install fleetnas`, no [host] extra) running host commands: one line naming the extra to
install, exit status 2, no traceback. The packages of the extra are made unimportable in a real subprocess."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_subprocess import HOST_EXTRA, assert_no_traceback, run_cli

REPO = Path(__file__).resolve().parents[2]
ONE_LINE = re.compile(r"^error: fleetnas (\w+) needs the host extra \(No module named '(\w+)'\): "
                      r"pip install 'fleetnas\[host\]'$")


@pytest.mark.parametrize("args", [
    ["demo", "--out", "{tmp}/demo"],
    ["supernets"],
    ["search", "--supernet", "tiny", "--devices", "local", "--budget", "2", "--out", "{tmp}/run"],
    ["export", "--supernet", "tiny", "--config", "random", "--out", "{tmp}/tiny.onnx"],
    ["bench", "--table", "{repo}/benchmarks/data/nb201_devices.csv.gz", "--params", "e0,e1,e2,e3,e4,e5",
     "--objectives", "acc_cifar10:max,hwnb_raspi4_lat_ms:min", "--budget", "30", "--seeds", "1"],
])
def test_host_commands_without_the_host_extra_say_what_to_install(tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)).replace("{repo}", str(REPO)) for a in args]
    r = run_cli(args, block=HOST_EXTRA, env={"FLEETNAS_CACHE_DIR": str(tmp_path / "cache")}, timeout_s=120)
    assert_no_traceback(r)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    match = ONE_LINE.match(lines[0])
    assert match, lines[0]
    assert match.group(1) == args[0] and match.group(2) in HOST_EXTRA
    assert not (tmp_path / "demo").exists() or not any((tmp_path / "demo").iterdir())


def test_the_brief_message_for_demo_without_torch(tmp_path):
    r = run_cli(["demo", "--out", tmp_path / "demo"], block=("torch", "matplotlib"),
                env={"FLEETNAS_CACHE_DIR": str(tmp_path / "cache")}, timeout_s=120)
    assert_no_traceback(r)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: fleetnas demo needs the host extra (No module named 'torch'): "
                                "pip install 'fleetnas[host]'")


def test_a_missing_module_that_is_not_an_extra_still_fails_loudly(tmp_path):
    """Only the extras' packages get the install hint: a broken install of something else is not hidden."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not a model")
    r = run_cli(["measure", model, "--agent", "127.0.0.1:1"], block=("grpc",), timeout_s=120)
    assert r.returncode != 0 and "needs the" not in r.stderr and "No module named 'grpc'" in r.stderr
