"""Dial-in devices on the host: the devices file entries, the hub's rules, the tunnel channel under the unchanged
client (a lost stream is an unreachable agent, as the dispatcher expects), and when each device was last seen."""
from __future__ import annotations

import threading
import time

import pytest

from dial_in_harness import write_devices
from fleetnas.host.errors import AgentUnreachable, UsageError
from fleetnas.host.fleet.client import AgentClient
from fleetnas.host.fleet.devices import load_devices, parse_devices
from fleetnas.host.fleet.dial_in import dial_in_client
from fleetnas.host.fleet.hub import Hub
from fleetnas.host.fleet.last_seen import LastSeen, describe
from fleetnas.host.fleet.tunnel import AgentStream, TunnelChannel


def test_a_dial_in_entry_is_read_with_its_token_and_fingerprint(tmp_path):
    registry = parse_devices('[[device]]\nname = "phone-01"\naddress = "dial-in"\nclass = "pixel7"\n'
                             'token_file = "phone.token"\nfingerprint = "3fa2c1d09e"\n', tmp_path / "devices.toml")
    device = registry.by_name["phone-01"]
    assert device.dial_in and device.fingerprint == "3fa2c1d09e" and device.token_file == tmp_path / "phone.token"


@pytest.mark.parametrize("entry, message", [
    ('address = "dial-out"', "HOST:PORT (e.g. rpi5-01.local:50051) or 'dial-in'"),
    ('address = "dial-in"\nfingerprint = "xyz"', "fingerprint must be the board's fingerprint_sha256 or a prefix"),
    ('address = "dial-in"\nfingerprint = "3fa2"', "at least 8 hex digits"),
])
def test_a_wrong_dial_in_entry_is_one_line_naming_the_fix(tmp_path, entry, message):
    with pytest.raises(UsageError, match="devices.toml: device #1 .*") as err:
        parse_devices(f'[[device]]\nname = "p"\nclass = "c"\n{entry}\n', tmp_path / "devices.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_hub_refuses_a_dial_in_device_that_could_not_prove_who_it_is(tmp_path):
    registry = parse_devices('[[device]]\nname = "p"\naddress = "dial-in"\nclass = "c"\n', tmp_path / "devices.toml")
    with pytest.raises(UsageError, match="dial-in device.s. p have no token_file.*--listen-tls-client-ca"):
        Hub(list(registry))


def test_a_dial_in_device_needs_a_hub_and_is_unreachable_until_it_connects(tmp_path):
    device = load_devices(write_devices(tmp_path, {"board": "t"})).by_name["board"]
    with pytest.raises(UsageError, match="board is dial-in: add --listen HOST:PORT"):
        dial_in_client(device)
    with AgentClient("dial-in board", channel=TunnelChannel("board", lambda name: None), timeout_s=2) as client:
        with pytest.raises(AgentUnreachable, match="dial-in device board is not connected.*fleetnas-agent connect"):
            client.device_info()
        assert client.health() is False


def test_a_stream_that_drops_fails_its_calls_as_an_unreachable_agent(tmp_path):
    """What the dispatcher needs to mark the device suspect and send the work elsewhere."""
    stream = AgentStream("board", ping_s=5.0)
    errors = []

    def call():
        with AgentClient("dial-in board", channel=TunnelChannel("board", lambda name: stream), timeout_s=30) as c:
            try:
                c.has_model("ab" * 32)
            except AgentUnreachable as exc:
                errors.append(exc)
    caller = threading.Thread(target=call)
    caller.start()
    sent = [next(stream.frames()) for _ in range(3)]   # the call as the agent would receive it
    assert [f.WhichOneof("kind") for f in sent] == ["method", "request", "requests_done"]
    assert sent[0].method == "/fleetnas.agent.v1.Agent/HasModel" and sent[0].timeout_s == 30
    stream.close("link cut")
    caller.join(timeout=10)
    assert len(errors) == 1 and "board lost its connection (link cut)" in str(errors[0])
    assert errors[0].code == "UNAVAILABLE"


def test_a_silent_agent_ends_its_stream_after_three_pings():
    stream = AgentStream("board", ping_s=0.1)
    started = time.monotonic()
    kinds = [f.WhichOneof("kind") for f in stream.frames()]   # ends by itself: nothing heard from the agent
    assert kinds and set(kinds) == {"ping"} and stream.closed.is_set()
    assert 0.3 <= time.monotonic() - started < 5 and "no word from the agent" in stream.why_closed


def test_last_seen_is_kept_across_processes_and_worded_by_age(tmp_path):
    path = tmp_path / "seen.json"
    assert LastSeen(path).get("board") is None and describe(None) == "never"
    LastSeen(path).record("board", fingerprint_sha256="ab12", peer="ipv4:10.0.0.5:4000", unix_s=1000.0)
    LastSeen(path).record("board", unix_s=2000.0)   # a disconnect: the fingerprint is kept
    entry = LastSeen(path).get("board")
    assert entry["unix_s"] == 2000.0 and entry["fingerprint_sha256"] == "ab12"
    assert [describe(2000.0, now) for now in (2005.0, 2000.0 + 150, 2000.0 + 7200, 2000.0 + 3 * 86400)] == \
        ["5 s ago", "2 min ago", "2 h ago", "3 d ago"]
