"""`fleetnas supernets` and `fleetnas export` end to end through the CLI entry point."""
from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest

from fleetnas.host.cli import main


def test_supernets_json_lists_names_and_spaces(capsys):
    assert main(["supernets", "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert {"tiny", "ofa-mbv3"} <= set(listed)
    tiny = listed["tiny"]
    assert tiny["space"]["size"] > 500 and tiny["inputs"] == ["input"]
    assert {p["name"] for p in tiny["space"]["params"]} >= {"res", "w_0", "d_0", "k_0"}


def test_supernets_text(capsys):
    assert main(["supernets"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "res" in out


def test_export_random_config_writes_the_file_and_reports_it(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    argv = ["export", "--supernet", "tiny", "--config", "random", "--seed", "3", "--format", "onnx",
            "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert record["macs"] > 0 and record["params"] > 0 and record["format"] == "onnx"
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["cache_hit"] is True


def test_export_json_config(tmp_path, capsys):
    config = {"res": 12, "w_0": 16, "d_0": 1, "k_0": 3, "w_1": 32, "d_1": 1, "k_1": 3, "w_2": 48, "d_2": 1, "k_2": 3}
    assert main(["export", "--supernet", "tiny", "--config", json.dumps(config), "--out", str(tmp_path / "s.onnx"),
                 "--cache-dir", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--config", "{bad"], "not valid JSON"),
    (["--config", '{"res": 13}'], "res"),
    (["--config", "[1]"], "JSON object"),
])
def test_export_bad_config_is_one_clear_line(tmp_path, capsys, argv, message):
    assert main(["export", "--supernet", "tiny", "--out", str(tmp_path / "x.onnx"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_export_unknown_supernet_and_missing_flags(tmp_path, capsys):
    assert main(["export", "--supernet", "nope", "--config", "random", "--out", str(tmp_path / "x")]) == 2
    assert "available" in capsys.readouterr().err
    assert main(["export", "--supernet", "tiny"]) == 2
    assert "missing --config, --out" in capsys.readouterr().err


def test_export_from_something_that_is_not_a_run_dir_is_one_clear_line(tmp_path, capsys):
    """The DIR --device --pick form slots into this command; its own tests live with the search."""
    assert main(["export", str(tmp_path), "--device", "rpi5", "--pick", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is not None, reason="litert-torch is installed")
def test_tflite_without_the_extra_says_how_to_install_it(tmp_path, capsys):
    assert main(["export", "--supernet", "tiny", "--config", "random", "--format", "tflite",
                 "--out", str(tmp_path / "x.tflite"), "--cache-dir", str(tmp_path)]) == 2
    assert "pip install 'fleetnas[tflite-export]'" in capsys.readouterr().err
