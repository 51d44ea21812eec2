"""`--devices local`: a real agent subprocess for the run, stopped afterwards, and not orphaned by a killed host."""
import os
import signal
import subprocess
import sys
import time

from fleetnas.host.fleet.local import LOCAL_CLASS, local_agent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:   # a zombie awaiting its parent counts as gone
        return fh.read().split(") ")[1][0] != "Z"


def test_local_agent_serves_and_stops(tmp_path):
    with local_agent(tmp_path / "cache") as registry:
        (device,) = registry.devices
        assert device.device_class == LOCAL_CLASS and device.address.startswith("127.0.0.1:")
        with device.client() as client:
            info = client.device_info()
            assert info.fingerprint_sha256 and not info.emulated
    with device.client() as client:
        assert not client.health(timeout_s=1.0)


def test_local_agent_dies_with_a_killed_host(tmp_path):
    script = ("import sys, time\nfrom pathlib import Path\nfrom fleetnas.host.fleet.local import local_agent\n"
              "with local_agent(Path(sys.argv[1])):\n"
              "    print('ready', flush=True)\n"
              "    time.sleep(60)\n")
    before = {p for p in os.listdir("/proc") if p.isdigit()}
    host = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "cache")], stdout=subprocess.PIPE, text=True)
    host.stdout.readline()
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and p not in before and int(p) != host.pid
                and _parent(int(p)) == host.pid]
    assert children, "the host started no agent"
    host.send_signal(signal.SIGKILL)
    host.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children)


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().split(") ")[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_search_with_a_runtime_the_boards_lack_stops_before_any_work_naming_what_they_offer(tmp_path, capsys):
    from fleetnas.host.cli import main
    assert main(["search", "--supernet", "tiny", "--devices", "local", "--budget", "2", "--runtime", "tvm",
                 "--no-measurement-cache", "--no-progress", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "device local does not offer runtime 'tvm'; it offers onnxruntime (onnx)" in err, err
    assert not (tmp_path / "run" / "models").exists()   # nothing evaluated or exported
