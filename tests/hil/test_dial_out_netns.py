"""A board the host cannot reach takes part in a search by dialling out, survives a cut link, and nothing is measured
twice.

The agent runs in its own network namespace: it can reach this host, but every inbound SYN is dropped there
(nftables), as behind NAT. Runs by default when root with `ip netns` and `nft`; skipped, with the reason, otherwise.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

import pytest

from dial_in_harness import connect_process, write_devices
from netns_harness import NetnsLab, netns_available, run

CUT_S = 4.0


def _why_not() -> str:
    why = netns_available()
    if why:
        return why
    if shutil.which("nft") is None:
        return "nftables (`nft`) is not installed"
    if _host_address() is None:
        return "this host has no global IPv4 address for the namespace to dial"
    return ""


def _host_address():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        words = line.split()
        if "inet" in words:
            address = words[words.index("inet") + 1].split("/")[0]
            if not address.startswith("10.213."):
                return address
    return None


pytestmark = pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "runs")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _fleetnas(*args: str, timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleetnas.host.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s)


def test_an_unreachable_board_dials_in_is_cut_mid_run_reconnects_and_nothing_is_measured_twice(tmp_path):
    host_ip = _host_address()
    listen = f"{host_ip}:{_free_port(host_ip)}"
    devices = write_devices(tmp_path, {"natted": "t0ken-natted"}, device_class="netns-x86")
    with NetnsLab(["a"]) as lab:
        board = lab.hosts["a"]
        # behind "NAT": no connection can be opened to the board, while its own connections go out and back
        run(*board.prefix(), "nft", "add table inet fnhil")
        run(*board.prefix(), "nft", "add chain inet fnhil input { type filter hook input priority 0 ; }")
        run(*board.prefix(), "nft", "add rule inet fnhil input tcp flags & (syn | ack) == syn drop")
        with pytest.raises((socket.timeout, TimeoutError)):   # dropped, not refused: nothing gets in
            socket.create_connection((board.address, 9), timeout=1.5)

        with connect_process(tmp_path / "agent", listen, "natted", tmp_path / "natted.token",
                             prefix=board.prefix()) as agent:
            out = tmp_path / "run"
            search = subprocess.Popen(
                [sys.executable, "-m", "fleetnas.host.cli", "search", "--supernet", "tiny", "--devices", str(devices),
                 "--objectives", "accuracy,latency", "--budget", "6", "--seed", "0", "--out", str(out),
                 "--no-progress", "--measurement-cache", str(tmp_path / "measurements.sqlite"),
                 "--listen", listen, "--dial-in-wait-s", "90", "--dial-in-ping-s", "1",
                 "--warmup-runs", "1", "--warmup-s", "0.01", "--blocks", "3", "--min-runs", "3",
                 "--min-block-s", "0.01"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                # cut the link once the board has measured something: mid-run, with work in flight
                agent.wait_log("Measure from hub", timeout_s=240)
                assert search.poll() is None, "the search ended before the cut"
                lab.cut("a")
                time.sleep(CUT_S)
                lab.restore("a")
                output, _ = search.communicate(timeout=600)
            finally:
                if search.poll() is None:
                    search.kill()
                    search.wait(timeout=30)
            (tmp_path / "search.log").write_text(output)
            assert search.returncode == 0, output[-6000:]
            assert "natted disconnected" in output and output.count("natted connected") >= 2, output[-4000:]
            assert agent.log().count("connected to hub") >= 2, agent.log()[-4000:]

            report = json.loads(_fleetnas("report", str(out), "--json", "--no-plots", timeout_s=300).stdout)
            assert report["candidates_evaluated"] >= 6 and report["fronts"]["netns-x86"], report
            # the board's own count: every measurement of the run once, none again after the reconnect
            check = _fleetnas("devices", "check", "--devices", str(devices), "--listen", listen,
                              "--dial-in-wait-s", "60", "--json", timeout_s=180)
            row = json.loads(check.stdout)[0]
            assert row["reachable"] and row["last_seen"] == "connected", check.stdout + check.stderr
    assert row["measurements_done"] == report["measurements"] == report["measurements_per_device"]["natted"], \
        (row, report)
