"""Several "boards" on one machine: agents in their own network namespaces and addresses, one cut off.

Skipped without root / network namespaces. Addresses are 10.213.<slot>.x inside namespaces these tests create and
nowhere else (see netns_harness.py); the host namespace only gets routes into them and a guard route.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from agent_process import agent_process
from netns_harness import NetnsLab, netns_available
from fleetnas.host.errors import AgentCallError, AgentUnreachable
from fleetnas.host.fleet.client import AgentClient

pytestmark = pytest.mark.skipif(netns_available() is not None, reason=str(netns_available()))


def answers(address: str, token: str, timeout_s: float = 5.0) -> bool:
    with AgentClient(address, token=token, timeout_s=timeout_s) as client:
        try:
            client.wait_ready(timeout_s=timeout_s)
            return bool(client.device_info(timeout_s=timeout_s).agent_version)
        except AgentCallError:
            return False


def test_agents_in_two_namespaces_are_reached_from_the_host_and_a_cut_isolates_one(tmp_path):
    with NetnsLab(["a", "b"]) as lab:
        ha, hb = lab.hosts["a"], lab.hosts["b"]
        with agent_process(tmp_path / "a", host=ha.address, token="ta", prefix=ha.prefix()) as a, \
                agent_process(tmp_path / "b", host=hb.address, token="tb", prefix=hb.prefix()) as b:
            assert a.address.startswith(ha.address + ":") and b.address.startswith(hb.address + ":")
            assert answers(a.address, "ta") and answers(b.address, "tb")
            # Separate hosts: a's port is not open on b's address, nor on this namespace's loopback.
            assert not answers(f"{hb.address}:{a.port}", "ta", timeout_s=2)
            assert not answers(f"127.0.0.1:{a.port}", "ta", timeout_s=2)

            lab.cut("b")
            with AgentClient(b.address, token="tb", timeout_s=3) as client:
                with pytest.raises(AgentUnreachable):   # what the dispatcher treats as a suspect device
                    client.device_info(timeout_s=3)
            assert answers(a.address, "ta"), "cutting b must not affect a"
            assert b.process.poll() is None, "b's agent keeps running: only its cable was pulled"

            lab.restore("b")
            assert answers(b.address, "tb", timeout_s=10), "b answers again once its cable is back"


@pytest.mark.slow
def test_search_completes_on_the_others_when_one_board_is_cut_off_mid_run(tmp_path):
    budget = 10
    with NetnsLab(["a", "b", "c"]) as lab:
        procs, search = {}, None
        try:
            for name, host in lab.hosts.items():
                ctx = agent_process(tmp_path / name, host=host.address, token=f"t{name}", prefix=host.prefix())
                procs[name] = (ctx, ctx.__enter__())
            devices = tmp_path / "devices.toml"
            devices.write_text("".join(
                f'[[device]]\nname = "ns-{n}"\naddress = "{p.address}"\nclass = "netns-x86"\n'
                f'token_file = "{p.token_file}"\n\n' for n, (_, p) in procs.items()))
            out = tmp_path / "run"
            search = subprocess.Popen(
                [sys.executable, "-m", "fleetnas.host.cli", "search", "--supernet", "tiny", "--devices", str(devices),
                 "--objectives", "accuracy,latency", "--budget", str(budget), "--seed", "0", "--out", str(out),
                 "--no-progress", "--measurement-cache", str(tmp_path / "measurements.sqlite")],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # Cut b as soon as it has measured something: it is mid-run, with work in flight.
            b = procs["b"][1]
            deadline = time.monotonic() + 600
            with AgentClient(b.address, token="tb", timeout_s=5) as client:
                while client.device_info().measurements_done < 1:
                    assert search.poll() is None, f"search ended before b measured anything:\n{search.stdout.read()}"
                    assert time.monotonic() < deadline, "b got no work within 600 s"
                    time.sleep(0.5)
            lab.cut("b")
            output, _ = search.communicate(timeout=1200)
        finally:
            if search is not None and search.poll() is None:
                search.kill()
                search.wait(timeout=30)
            for ctx, _ in procs.values():
                ctx.__exit__(None, None, None)
    assert search.returncode == 0, output[-6000:]
    report = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "report", str(out), "--json", "--no-plots"],
                            capture_output=True, text=True, timeout=300)
    data = json.loads(report.stdout)
    assert data["candidates_evaluated"] >= budget and data["fronts"]["netns-x86"], data
    assert "ns-b" in output and "suspect" in output, f"the cut was not noticed:\n{output[-4000:]}"
