"""fleetnas.agent.board.device_state and sysfs against a fake big.LITTLE board tree under tmp_path."""
import math

import pytest
from sysfs_tree import make_board_tree, write

from fleetnas.agent.board import sysfs
from fleetnas.agent.board.device_state import (cpu_policies, snapshot, thermal_readings, throttle_events,
                                         wait_for_cooldown)


@pytest.fixture
def board(tmp_path):
    return make_board_tree(tmp_path / "board")


def test_snapshot_reads_every_zone_and_policy(board):
    state = snapshot(board)
    assert [(t.zone, t.type, t.temp_c) for t in state.thermal] == [
        ("thermal_zone0", "cpu-thermal", 45.0), ("thermal_zone1", "gpu-thermal", 41.5)]
    assert state.max_temp_c == 45.0
    little, big = state.cpu_policies
    assert (little.policy, little.cpus, little.governor) == ("policy0", (0, 1, 2, 3), "schedutil")
    assert (big.cur_khz, big.min_khz, big.max_khz, big.cpuinfo_max_khz) == (1200000, 408000, 2400000, 2400000)
    assert big.cpus == (4, 5, 6, 7)
    assert dict(state.throttle) == {"core_throttle_count": "0"}
    assert state.captured_unix_ns > 0


def test_env_variable_selects_the_root(board, monkeypatch):
    monkeypatch.setenv(sysfs.ENV_ROOT, str(board))
    assert len(thermal_readings()) == 2 and len(cpu_policies()) == 2


def test_missing_tree_gives_empty_state_not_an_error(tmp_path):
    state = snapshot(tmp_path / "nothing")
    assert state.thermal == () and state.cpu_policies == () and state.throttle == ()
    assert math.isnan(state.max_temp_c)


def test_unreadable_zone_is_skipped(board):
    write(board, "/sys/class/thermal/thermal_zone2/type", "broken\n")
    write(board, "/sys/class/thermal/thermal_zone2/temp", "")  # disabled zones fail the read
    assert [t.zone for t in thermal_readings(board)] == ["thermal_zone0", "thermal_zone1"]


def test_zones_sort_naturally(tmp_path):
    for i in (10, 2, 1):
        write(tmp_path, f"/sys/class/thermal/thermal_zone{i}/temp", f"{i}000\n")
    assert [t.zone for t in thermal_readings(tmp_path)] == ["thermal_zone1", "thermal_zone2", "thermal_zone10"]


def test_throttle_events_from_counters(board):
    before = snapshot(board)
    assert throttle_events(before, snapshot(board)) == []
    write(board, "/sys/devices/system/cpu/cpu5/thermal_throttle/core_throttle_count", "3\n")
    events = throttle_events(before, snapshot(board))
    assert events == ["core_throttle_count rose from 0 to 3"]
    assert throttle_events(None, before) == []


def test_vcgencmd_throttle_bits(board, tmp_path, monkeypatch):
    fake_bin = tmp_path / "bin"
    script = write(fake_bin, "/vcgencmd", "#!/bin/sh\necho \"throttled=$(cat %s)\"\n" % (tmp_path / "bits"))
    script.chmod(0o755)
    (tmp_path / "bits").write_text("0x50000")  # happened since boot, not now
    monkeypatch.setenv("PATH", f"{fake_bin}:/usr/bin:/bin")
    before = snapshot(board)
    assert dict(before.throttle)["vcgencmd_throttled"] == "0x50000"
    assert throttle_events(before, snapshot(board)) == []
    (tmp_path / "bits").write_text("0x50005")  # under-voltage + throttled right now
    assert throttle_events(before, snapshot(board)) == ["vcgencmd get_throttled=0x50005"]


def test_wait_for_cooldown_polls_until_cool(board):
    temp_file = board / "sys/class/thermal/thermal_zone0/temp"
    temp_file.write_text("60000\n")
    sleeps = []

    def cooling_sleep(seconds):  # the board cools 4 °C per poll
        sleeps.append(seconds)
        temp_file.write_text(f"{int(temp_file.read_text()) - 4000}\n")

    cooled, temp_c = wait_for_cooldown(idle_temp_c=45.0, margin_c=5.0, timeout_s=60, root=board, sleep=cooling_sleep)
    assert cooled and temp_c == 48.0 and len(sleeps) == 3


def test_wait_for_cooldown_gives_up_and_handles_boards_without_zones(board, tmp_path):
    (board / "sys/class/thermal/thermal_zone0/temp").write_text("90000\n")
    cooled, temp_c = wait_for_cooldown(45.0, timeout_s=0.0, root=board, sleep=lambda s: None)
    assert not cooled and temp_c == 90.0
    cooled, temp_c = wait_for_cooldown(45.0, root=tmp_path / "empty")
    assert cooled and math.isnan(temp_c)


def test_meminfo_and_cpuinfo_parsers(board):
    assert sysfs.meminfo(board)["MemTotal"] == 8_000_000 * 1024
    blocks = sysfs.cpuinfo(board)
    assert blocks[-1]["Model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert sysfs.read_int("/no/such/file", board) is None


@pytest.mark.parametrize("text, cpus", [("0-3,6,8-9", [0, 1, 2, 3, 6, 8, 9]), ("4 5 6 7\n", [4, 5, 6, 7]),
                                        ("", []), (None, []), ("junk,2", [2])])
def test_parse_cpu_list(text, cpus):
    assert sysfs.parse_cpu_list(text) == cpus
