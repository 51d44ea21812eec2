"""Run by hand with a permissive umask, the agent keeps its store to itself (folders 0700, files 0600), says in one
line when its token file is readable by others, and never shows a remote caller where its store lives."""
import logging
import os
import signal
import stat

from agent_fault_kit import agent_process, fault_agent, quick_timing, small_model
from fleetnas.agent.rpc.auth import read_token_file
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.fleet.client import WireClient, outcome_name


def test_store_is_private_whatever_the_umask_and_a_readable_token_is_named(tmp_path):
    token = tmp_path / "token"
    token.write_text("tok-perm\n")
    token.chmod(0o644)
    agent = agent_process(tmp_path, "--token-file", str(token), umask=0)
    try:
        client = WireClient(f"127.0.0.1:{agent.port}", token="tok-perm")
        sha, _ = client.ensure_model(small_model(tmp_path / "m"))
        assert client.has_model(sha)
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=30)
    cache = tmp_path / "cache"
    loose = [f"{p.relative_to(cache)} {stat.S_IMODE(p.stat().st_mode):04o}"
             for p in [cache, *cache.rglob("*")] if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == [], f"readable by others under the store: {loose}"
    warnings = [line for line in stderr.decode().splitlines() if "readable by other users" in line]
    assert len(warnings) == 1 and "chmod 600" in warnings[0] and str(token) in warnings[0], stderr.decode()


def test_a_private_token_file_gives_no_warning(tmp_path, caplog):
    token = tmp_path / "token"
    token.write_text("tok\n")
    token.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="fleetnas.agent"):
        assert read_token_file(token) == "tok"
    assert not caplog.records


def test_a_runtime_error_does_not_show_the_store_path(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x08" + b"\x3a\x06" + b"\x0a\x04junk")  # a container the runtime cannot load
    with fault_agent(tmp_path / "agent") as agent:
        client = agent.client()
        sha, _ = client.ensure_model(garbage)
        r = client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=quick_timing())
        assert outcome_name(r) == "LOAD_FAILED" and r.message
        root = str(agent.service.store.root)
        assert root not in r.message and str(tmp_path) not in r.message, r.message
        assert os.sep + "models" + os.sep not in r.message, r.message
