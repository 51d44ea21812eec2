"""Dial-out: a real `fleetnas-agent connect` process dials a real hub on 127.0.0.1 and is measured through the stream
as through a direct connection; wrong tokens, impersonation and a second stream are refused; a restarted hub is
dialled again."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dial_in_harness import connect_process, running_hub, write_devices
from fleetnas.host.errors import AgentUnreachable
from fleetnas.host.fleet.contract import RuntimeConfig, TimingConfig
from fleetnas.host.fleet.devices import load_devices

FAST = RuntimeConfig(timing=TimingConfig(warmup_runs=2, warmup_s=0.05, blocks=3, min_runs_per_block=5,
                                         min_block_s=0.05, timeout_s=60.0))


def test_an_agent_that_dials_out_is_measured_through_the_stream_and_dials_a_restarted_hub_again(tmp_path):
    from models import make_onnx_model
    devices_file = write_devices(tmp_path, {"board-a": "token-a"})
    device = load_devices(devices_file).by_name["board-a"]
    model = make_onnx_model(tmp_path / "m.onnx")
    with running_hub(devices_file) as hub:
        port = hub.address.rpartition(":")[2]
        with connect_process(tmp_path / "a", hub.address, "board-a", tmp_path / "board-a.token") as agent:
            assert hub.hub.wait_for(["board-a"], 90) == [], agent.log()
            with device.client(timeout_s=30) as client:
                info = client.device_info()
                assert info.fingerprint_sha256 == hub.hub.connections()["board-a"].fingerprint_sha256
                assert client.health()
                sha, uploaded = client.ensure_model(model)
                assert uploaded and client.ensure_model(model) == (sha, False)   # upload-once holds
                first = client.measure(sha, FAST, request_id="run1/cfg@dialin-x86")
                again = client.measure(sha, FAST, request_id="run1/cfg@dialin-x86")   # a retry: not re-measured
                assert first.outcome in ("OK", "UNSTABLE") and first.overall.median_ms > 0 and not first.replayed
                assert again.replayed and again.overall == first.overall
                assert client.device_info().measurements_done == 1

            hub.hub.stop()   # the host goes away: calls fail as for any unreachable agent ...
            with device.client(timeout_s=5) as client, pytest.raises(AgentUnreachable):
                client.device_info()
            with running_hub(devices_file, listen=f"127.0.0.1:{port}") as restarted:   # ... and comes back
                assert restarted.hub.wait_for(["board-a"], 30) == [], agent.log()
                with device.client(timeout_s=30) as client:
                    assert client.has_model(sha), "the agent's store survives the reconnect"
                    assert client.device_info().measurements_done == 1
            assert agent.log().count("connected to hub") >= 2


@pytest.fixture(scope="module")
def in_process_agent(tmp_path_factory):
    """The agent's own service and servicer, dialling from this process (refusals need no separate process)."""
    from fleetnas.agent import __version__
    from fleetnas.agent.app import make_service
    from fleetnas.agent.board.device_info import DeviceInfoSource
    from fleetnas.agent.rpc.server import make_servicer
    from fleetnas.agent.rpc.tunnel import TunnelServer
    from fleetnas.agent.rpc.dialout import Identity
    from fleetnas.agent.store.model_store import ModelStore
    cache = tmp_path_factory.mktemp("agent")
    service = make_service(ModelStore(cache / "store", quota_bytes=2**24), cache)
    source = DeviceInfoSource(service, state_dir=cache)
    tunnel = TunnelServer(make_servicer(service, source.device_info, source.device_id), workers=4)

    def identity(name: str) -> Identity:
        return Identity(name, source.device_id, lambda: source.fingerprint.fingerprint_sha256, __version__)
    yield tunnel, identity
    tunnel.close()


def dial_once(hub_address: str, tunnel, identity, token: str):
    """One connection attempt; (outcome, dialout). A refused one returns at once, an accepted one when stopped."""
    from fleetnas.agent.rpc.dialout import DialOut
    dialout = DialOut(hub_address, tunnel, identity, token=token)
    return dialout._attempt(threading.Event()), dialout


def test_wrong_tokens_and_impersonation_are_refused(tmp_path, in_process_agent):
    tunnel, identity = in_process_agent
    devices_file = write_devices(tmp_path, {"board-a": "token-a", "board-b": "token-b"})
    with running_hub(devices_file) as hub:
        outcome, _ = dial_once(hub.address, tunnel, identity("board-a"), "not-the-token")
        assert not outcome.established and "wrong token for device board-a" in outcome.why
        # b's agent, with its own valid token, claiming to be a
        outcome, _ = dial_once(hub.address, tunnel, identity("board-a"), "token-b")
        assert not outcome.established and "UNAUTHENTICATED" in outcome.why
        outcome, _ = dial_once(hub.address, tunnel, identity("board-z"), "token-a")
        assert not outcome.established and "no dial-in device named 'board-z'" in outcome.why
        assert hub.hub.connections() == {}


def test_a_second_stream_for_a_connected_device_is_refused_and_a_hub_with_another_token_refuses(
        tmp_path, in_process_agent):
    from fleetnas.agent.rpc.dialout import DialOut
    tunnel, identity = in_process_agent
    devices_file = write_devices(tmp_path, {"board-a": "token-a"})
    with running_hub(devices_file) as hub:
        first = DialOut(hub.address, tunnel, identity("board-a"), token="token-a")
        stop = threading.Event()
        runner = threading.Thread(target=first.run, args=(stop,), daemon=True)
        runner.start()
        try:
            assert hub.hub.wait_for(["board-a"], 60) == []
            outcome, _ = dial_once(hub.address, tunnel, identity("board-a"), "token-a")
            assert not outcome.established and "already connected" in outcome.why
        finally:
            stop.set()
            runner.join(timeout=10)
    # a hub whose devices file holds another token for the device: no stream, nothing served
    other = write_devices(tmp_path / "other", {"board-a": "someone-elses-token"})
    with running_hub(other) as hub:
        outcome, _ = dial_once(hub.address, tunnel, identity("board-a"), "token-a")
        assert not outcome.established and "wrong token" in outcome.why


def test_unknown_method_names_are_refused_by_the_agent(in_process_agent):
    from fleetnas.agent.v1 import hub_pb2
    tunnel, _ = in_process_agent
    sent = []
    session = tunnel.session(sent.append, peer="test")
    session.on_frame(hub_pb2.TunnelFrame(call_id=7, method="/os.System/Run", timeout_s=5))
    assert [f.WhichOneof("kind") for f in sent] == ["status"]
    assert sent[0].call_id == 7 and sent[0].status.code == 12 and "does not serve" in sent[0].status.details


def test_a_board_with_another_fingerprint_than_its_entry_is_refused(tmp_path, in_process_agent):
    tunnel, identity = in_process_agent
    actual = identity("board-a").fingerprint_sha256()
    other = "0123456789" if not actual.startswith("0123456789") else "9876543210"
    devices_file = write_devices(tmp_path, {"board-a": "token-a"}, extra=f'fingerprint = "{other}"\n')
    with running_hub(devices_file) as hub:
        outcome, _ = dial_once(hub.address, tunnel, identity("board-a"), "token-a")
    assert not outcome.established and "PERMISSION_DENIED" in outcome.why
    assert f"fingerprint {actual[:16]}, its devices.toml entry expects {other}" in outcome.why.replace("  ", " ")


def test_over_mutual_tls_the_client_certificate_must_be_issued_for_the_device(tmp_path, in_process_agent):
    from fleetnas.agent.rpc.dialout import DialOut, DialTls
    from fleetnas.host.fleet.hub import HubTls
    from tls_certs import make_certs
    tunnel, identity = in_process_agent
    certs = make_certs(tmp_path / "tls", client_name="board-a")
    devices_file = write_devices(tmp_path, {"board-a": "token-a", "board-b": "token-b"})
    tls = DialTls(ca=certs["ca"], cert=certs["client_cert"], key=certs["client_key"], server_name="localhost")
    with running_hub(devices_file, tls=HubTls(certs["server_cert"], certs["server_key"], certs["ca"])) as hub:
        # b's agent, with b's token but a's certificate
        outcome = DialOut(hub.address, tunnel, identity("board-b"), token="token-b", tls=tls)._attempt(
            threading.Event())
        assert not outcome.established and "client certificate is not issued for device board-b" in outcome.why
        # a's agent with its own certificate: connected, and measured through the encrypted stream
        dialout, stop = DialOut(hub.address, tunnel, identity("board-a"), token="token-a", tls=tls), threading.Event()
        runner = threading.Thread(target=dialout.run, args=(stop,), daemon=True)
        runner.start()
        try:
            assert hub.hub.wait_for(["board-a"], 60) == []
            with load_devices(devices_file).by_name["board-a"].client(timeout_s=30) as client:
                assert client.device_info().fingerprint_sha256 == identity("board-a").fingerprint_sha256()
        finally:
            stop.set()
            runner.join(timeout=10)


def test_connect_refuses_a_malformed_hub_address_and_a_missing_credential_in_one_line(tmp_path, capsys):
    from fleetnas.agent.cli import main
    cases = [(["connect", "nas-host", "--token-file", str(tmp_path / "t")], "the hub address must be HOST:PORT"),
             (["connect", "nas-host:0", "--token-file", str(tmp_path / "t")], "the hub address must be HOST:PORT"),
             (["connect", "nas-host:50052"], "connect needs --token-file"),
             (["connect", "nas-host:50052", "--tls-cert", str(tmp_path / "c")], "--tls-cert and --tls-key go together"),
             (["connect", "nas-host:50052", "--token-file", str(tmp_path / "missing")], "cannot read token file")]
    for argv, message in cases:
        assert main(argv + ["--cache-dir", str(tmp_path / "cache")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (argv, err)


def test_the_agent_serves_nothing_to_a_hub_that_cannot_prove_the_token(in_process_agent):
    """A stand-in for a hub at a spoofed address: it answers the hello with a made-up proof and then sends a call."""
    from concurrent import futures

    import grpc

    from fleetnas.agent.v1 import hub_pb2, hub_pb2_grpc
    tunnel, identity = in_process_agent
    answers = []

    class ImpostorHub(hub_pb2_grpc.HubServicer):
        def Connect(self, request_iterator, context):
            yield hub_pb2.TunnelFrame(challenge=hub_pb2.Challenge(nonce=b"n" * 32))
            next(request_iterator)
            yield hub_pb2.TunnelFrame(welcome=hub_pb2.Welcome(token_proof=b"x" * 32, ping_interval_s=1))
            yield hub_pb2.TunnelFrame(call_id=1, method="/fleetnas.agent.v1.Agent/ListModels", timeout_s=5)
            yield hub_pb2.TunnelFrame(call_id=1, request=b"")
            answers.extend(f.WhichOneof("kind") for f in request_iterator)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    hub_pb2_grpc.add_HubServicer_to_server(ImpostorHub(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        outcome, _ = dial_once(f"127.0.0.1:{port}", tunnel, identity("board-a"), "token-a")
    finally:
        server.stop(grace=None).wait()
    assert not outcome.established and "could not prove it knows this device's token" in outcome.why
    assert "response" not in answers and "status" not in answers
