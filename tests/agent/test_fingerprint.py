"""fleetnas.agent.board.fingerprint: clusters, device id persistence, a hash over stable fields only."""
import hashlib
import os
from dataclasses import replace

import pytest
from sysfs_tree import make_board_tree, write

from fleetnas.agent.board.fingerprint import (cpu_clusters, device_id, fastest_cluster, fingerprint, fingerprint_sha256)
from fleetnas.agent.records import CpuCluster, RuntimeInfo

RUNTIMES = (RuntimeInfo("onnxruntime", True, "1.32.0", ("CPUExecutionProvider",)),)


@pytest.fixture
def board(tmp_path):
    return make_board_tree(tmp_path / "board")


def test_clusters_fastest_first(board):
    assert cpu_clusters(board) == (CpuCluster((4, 5, 6, 7), 2400000), CpuCluster((0, 1, 2, 3), 1800000))


def test_fastest_cluster_respects_the_allowed_cpus(board):
    assert fastest_cluster(allowed=range(8), root=board) == (4, 5, 6, 7)
    assert fastest_cluster(allowed=[0, 1, 6], root=board) == (6,)
    assert fastest_cluster(allowed=[0, 1], root=board) == (0, 1)


def test_without_cpufreq_one_cluster_of_all_cpus(tmp_path):
    write(tmp_path, "/sys/devices/system/cpu/online", "0-1\n")
    assert cpu_clusters(tmp_path) == (CpuCluster((0, 1), 0),)
    assert fastest_cluster(allowed=[0, 1], root=tmp_path) == (0, 1)


def test_device_id_from_machine_id_is_hashed_and_persisted(board, tmp_path):
    state = tmp_path / "state"
    first = device_id(state, board)
    assert first == hashlib.sha256(b"fleetnas-device-id:0123456789abcdef").hexdigest()[:16]
    assert "0123456789abcdef" not in first
    (board / "etc/machine-id").write_text("changed\n")
    assert device_id(state, board) == first  # the stored id wins: it names this install
    assert (state / "device_id").read_text().strip() == first


def test_device_id_random_without_machine_id(tmp_path):
    root = make_board_tree(tmp_path / "b", machine_id="")
    a, b = device_id(tmp_path / "s1", root), device_id(tmp_path / "s2", root)
    assert a != b and len(a) == 16
    assert device_id(tmp_path / "s1", root) == a


def test_fingerprint_fields_and_hash_stability(board, tmp_path):
    fp = fingerprint(tmp_path / "state", RUNTIMES, "0.1.0", root=board)
    assert fp.cpu_model == "Cortex-A55 + Cortex-A76"  # ARM cpuinfo has no "model name": core types instead
    assert fp.board_model == "Raspberry Pi 5 Model B Rev 1.0"
    assert fp.os_name == "Debian GNU/Linux 12 (bookworm)"
    assert fp.ram_bytes == 8_000_000 * 1024 and fp.cpu_count == 8
    assert fp.thermal_zones == ("thermal_zone0:cpu-thermal", "thermal_zone1:gpu-thermal")
    assert fp.governors == ("policy0:schedutil", "policy4:schedutil")
    assert len(fp.fingerprint_sha256) == 64 and fp.fingerprint_sha256 == fingerprint_sha256(fp)
    # A second board of the same kind (other id, other governor setting) shares the hash ...
    twin = fingerprint(tmp_path / "other-state", RUNTIMES, "0.2.0", root=make_board_tree(tmp_path / "twin",
                                                                                          machine_id="ffff"))
    assert twin.device_id != fp.device_id and twin.fingerprint_sha256 == fp.fingerprint_sha256
    # ... a runtime upgrade or different RAM does not.
    upgraded = replace(fp, runtimes=(RuntimeInfo("onnxruntime", True, "1.33.0", ("CPUExecutionProvider",)),))
    assert fingerprint_sha256(upgraded) != fp.fingerprint_sha256
    assert fingerprint_sha256(replace(fp, ram_bytes=4 * 2**30)) != fp.fingerprint_sha256
    # A runtime the agent knows but the board lacks changes nothing measured, so it keeps the hash (and the cache).
    absent = replace(fp, runtimes=RUNTIMES + (RuntimeInfo("executorch", False, "", ()),))
    assert fingerprint_sha256(absent) == fp.fingerprint_sha256


def test_fingerprint_on_this_machine(tmp_path):
    fp = fingerprint(tmp_path / "state", RUNTIMES, root="/")
    assert fp.cpu_count >= 1 and fp.ram_bytes > 0 and fp.kernel == os.uname().release
    assert sum(len(c.cpus) for c in fp.clusters) == fp.cpu_count
