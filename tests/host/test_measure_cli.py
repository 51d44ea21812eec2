"""`fleetnas measure` against a real agent: uploads once, prints the result, fails with one clear line."""
import json
import socket
import subprocess
import sys

from fleetnas.agent.measure.reference_model import write_reference_model
from fleetnas.host.cli import main

MEASURED = (0, 3)  # OK, or UNSTABLE (numbers flagged): a loaded CI machine may produce either

FAST = ["--warmup-runs", "2", "--warmup-s", "0.05", "--blocks", "3", "--min-runs", "5", "--min-block-s", "0.05"]


def test_measure_json_then_cached_upload(agent, tmp_path, capsys):
    model = write_reference_model(tmp_path, "onnx", width=32)
    assert main(["measure", str(model), "--agent", agent.address, "--threads", "1", "--json", *FAST]) in MEASURED
    first = json.loads(capsys.readouterr().out)
    assert first["outcome"] in ("OUTCOME_OK", "OUTCOME_UNSTABLE") and first["uploaded"] is True
    assert first["overall"]["median_ms"] > 0 and first["config"]["intra_op_threads"] == 1
    assert main(["measure", str(model), "--agent", agent.address, *FAST]) in MEASURED
    text = capsys.readouterr().out
    assert "already on the agent" in text and "median" in text and "CV of block medians" in text
    (latency,) = [line for line in text.splitlines() if line.strip().startswith("latency")]
    assert "CV" not in latency   # single inferences' spread is not the stability measure: only the blocks' CV shows


def test_runtime_the_agent_does_not_offer_is_one_line_naming_what_it_offers(agent, tmp_path, capsys):
    model = write_reference_model(tmp_path, "onnx", width=8)
    assert main(["measure", str(model), "--agent", agent.address, "--runtime", "litert", *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: agent {agent.address} (device ") and "offers no runtime 'litert' for onnx" in err
    assert "it offers onnxruntime (onnx), litert (tflite)" in err


def test_agent_without_port_uses_the_agents_default_port():
    from fleetnas.host.commands.connection import agent_address
    assert agent_address("localhost") == "localhost:50051" and agent_address("rpi5-01.local:6000") == "rpi5-01.local:6000"
    assert agent_address("[::1]") == "[::1]:50051" and agent_address("::1") == "[::1]:50051"
    assert agent_address("[::1]:7000") == "[::1]:7000"


def test_measure_tflite_picks_litert(agent, tmp_path, capsys):
    model = write_reference_model(tmp_path, "tflite", width=32)
    assert main(["measure", str(model), "--agent", agent.address, "--json", *FAST]) in MEASURED
    assert json.loads(capsys.readouterr().out)["config"]["runtime"] == "litert"


def test_failed_model_exits_non_zero_with_the_agents_message(agent, tmp_path, capsys):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x08\x3a\x06\x0a\x04junk")
    assert main(["measure", str(bad), "--agent", agent.address, *FAST]) == 1
    assert "error: LOAD_FAILED" in capsys.readouterr().out


def test_unreachable_agent_is_one_line_without_traceback(tmp_path):
    model = write_reference_model(tmp_path, "onnx", width=8)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "measure", str(model), "--agent",
                          f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith(f"error: 127.0.0.1:{port}: agent unreachable")


def test_missing_model_file(tmp_path, capsys):
    assert main(["measure", str(tmp_path / "nope.onnx"), "--agent", "127.0.0.1:1"]) == 2
    assert "does not exist" in capsys.readouterr().err
