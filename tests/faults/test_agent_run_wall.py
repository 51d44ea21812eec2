"""`run_wall_ms` covers every worker run a measurement cost: a throttled first attempt, its re-run, and the drift
canary, not only the last run. A real agent with its hygiene, on a fake sysfs tree whose throttle counter keeps
rising."""
import os
import threading
from pathlib import Path

from agent_fault_kit import fault_agent, small_model
from fleetnas.agent.app import hygienic_measure_fn
from fleetnas.agent.measure.hygiene import REFERENCE_TIMING
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.fleet.client import outcome_name

THROTTLE = "sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count"
# Each attempt spends at least warmup_s + blocks * min_block_s in timed loops.
TIMING = pb.TimingConfig(warmup_runs=1, warmup_s=0.2, blocks=2, min_runs_per_block=3, min_block_s=0.3, timeout_s=60)
ATTEMPT_MIN_MS = 1e3 * (0.2 + 2 * 0.3)
CANARY_MIN_MS = 1e3 * (REFERENCE_TIMING.warmup_s + REFERENCE_TIMING.blocks * REFERENCE_TIMING.min_block_s)


def fake_board(root: Path) -> Path:
    for rel, text in (("sys/class/thermal/thermal_zone0/type", "cpu-thermal"),
                      ("sys/class/thermal/thermal_zone0/temp", "40000"), (THROTTLE, "0")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    return root


def test_run_wall_covers_both_attempts_and_the_canary(tmp_path, monkeypatch):
    root = fake_board(tmp_path / "sysfs")
    monkeypatch.setenv("FLEETNAS_SYSFS_ROOT", str(root))
    stop = threading.Event()

    def throttle_throughout():
        count = 0
        while not stop.wait(0.05):
            count += 1
            tmp = root / (THROTTLE + ".tmp")
            tmp.write_text(f"{count}\n")
            os.replace(tmp, root / THROTTLE)  # atomic: a reader never sees the file empty mid-write
    with fault_agent(tmp_path / "agent", measure_fn=hygienic_measure_fn(tmp_path / "agent")) as agent:
        client = agent.client()
        sha, _ = client.ensure_model(small_model(tmp_path / "m"))
        bumper = threading.Thread(target=throttle_throughout, daemon=True)
        bumper.start()
        try:
            r = client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=TIMING, timeout_s=180)
        finally:
            stop.set()
            bumper.join()
    assert outcome_name(r) == "UNSTABLE" and r.attempts == 2, (outcome_name(r), r.attempts, r.message)
    # the first measurement on an agent also takes the drift canary's baseline
    assert r.run_wall_ms >= 2 * ATTEMPT_MIN_MS + CANARY_MIN_MS, r.run_wall_ms
