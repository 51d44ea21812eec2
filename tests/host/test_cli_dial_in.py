"""The dial-in commands as a user runs them: `fleetnas hub`, `devices check` and `search` with a dial-in device."""
from __future__ import annotations

import json
import socket

from cli_subprocess import run_cli
from dial_in_harness import connect_process, write_devices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_and_devices_check_see_a_dialling_agent_and_remember_when_it_was_last_seen(tmp_path):
    devices = write_devices(tmp_path, {"board-a": "token-a"})
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache-home")}   # where the last-seen record goes
    before = run_cli(["devices", "check", "--devices", devices, "--json"], env=env, timeout_s=120)
    row = json.loads(before.stdout)[0]
    assert before.returncode == 1 and row["last_seen"] == "never" and "add --listen HOST:PORT" in row["problem"]

    listen = f"127.0.0.1:{_free_port()}"
    with connect_process(tmp_path / "a", listen, "board-a", tmp_path / "board-a.token"):
        hub = run_cli(["hub", "--devices", devices, "--listen", listen, "--dial-in-wait-s", "90", "--for-s", "1",
                       "--json"], env=env, timeout_s=180)
        assert hub.returncode == 0, hub.stderr
        assert [r["name"] for r in json.loads(hub.stdout)] == ["board-a"]
        assert f"listening on {listen} (plaintext) for dial-in device(s) board-a" in hub.stderr
        assert "board-a connected from" in hub.stderr

        check = run_cli(["devices", "check", "--devices", devices, "--listen", listen, "--dial-in-wait-s", "90",
                         "--json"], env=env, timeout_s=180)
        row = json.loads(check.stdout)[0]
        assert check.returncode == 0 and row["reachable"] and row["usable"], check.stdout + check.stderr
        assert row["last_seen"] == "connected" and row["runtimes"]
    after = run_cli(["devices", "check", "--devices", devices], env=env, timeout_s=120)
    assert "last seen" in after.stdout and " s ago" in after.stdout, after.stdout


def test_a_dial_in_device_without_listen_and_a_listen_without_one_are_one_line_errors(tmp_path):
    devices = write_devices(tmp_path, {"board-a": "token-a"})
    search = run_cli(["search", "--supernet", "tiny", "--devices", devices, "--budget", "2", "--out", tmp_path / "run"],
                     timeout_s=300)
    assert search.returncode == 2 and search.stderr.strip().count("\n") == 0, search.stderr
    assert "board-a: dial-in device(s) need --listen HOST:PORT" in search.stderr

    plain = tmp_path / "plain.toml"
    plain.write_text('[[device]]\nname = "b"\naddress = "127.0.0.1:1"\nclass = "c"\n')
    hub = run_cli(["hub", "--devices", plain, "--listen", "127.0.0.1:0"], timeout_s=120)
    assert hub.returncode == 2 and 'no device in the devices file has address = "dial-in"' in hub.stderr
    bad = run_cli(["hub", "--devices", devices, "--listen", "nowhere"], timeout_s=120)
    assert bad.returncode == 2 and "--listen must be HOST:PORT" in bad.stderr
