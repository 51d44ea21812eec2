"""A full disk is a typed answer, not an agent bug: uploads evict least-recently-used models and retry, then answer
RESOURCE_EXHAUSTED; a measurement never fails because its last-used bookkeeping could not be written; LRU order holds
within one second. The store sits on a real 2 MiB tmpfs (skipped where it cannot be mounted)."""
import contextlib
import errno
import subprocess

import pytest

from agent_fault_kit import fault_agent, quick_timing
from fleetnas.agent.measure.reference_model import build_onnx_bytes
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import outcome_name

MEASURED = ("OK", "UNSTABLE")
BIG = dict(width=256, depth=2)  # ~515 KiB: three fill most of a 2 MiB disk


@pytest.fixture
def tiny_disk(tmp_path):
    store_dir = tmp_path / "agent" / "store"
    store_dir.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(store_dir)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield tmp_path / "agent"
    finally:
        subprocess.run(["umount", "-l", str(store_dir)], check=False)


def model_file(tmp_path, seed, **dims):
    path = tmp_path / f"m{seed}.onnx"
    path.write_bytes(build_onnx_bytes(seed=seed, **dims))
    return path


def measure(client, sha):
    return client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=quick_timing(), timeout_s=120)


def test_full_disk_evicts_least_recently_used_then_stores(tiny_disk, tmp_path):
    with fault_agent(tiny_disk, store={"min_free_bytes": 0}) as agent:
        client = agent.client()
        shas = [client.upload(model_file(tmp_path, s, **BIG)).model.sha256 for s in range(3)]
        assert outcome_name(measure(client, shas[0])) in MEASURED  # the first is now the most recently used
        reply = client.upload(model_file(tmp_path, 3, **BIG))  # does not fit on the disk beside the other three
        assert reply.model.sha256 and list(reply.evicted_sha256) == [shas[1]], reply.evicted_sha256
        assert client.has_model(shas[0]) and client.has_model(shas[2])


def test_a_model_bigger_than_the_disk_is_resource_exhausted(tiny_disk, tmp_path):
    with fault_agent(tiny_disk, store={"min_free_bytes": 0}) as agent:
        client = agent.client()
        kept = client.upload(model_file(tmp_path, 0, width=32)).model.sha256
        with pytest.raises(AgentCallError) as err:
            client.upload(model_file(tmp_path, 9, width=512, depth=3))  # ~3 MiB
        assert err.value.code == "RESOURCE_EXHAUSTED" and "not enough disk space" in str(err.value), err.value
        assert "bug" not in str(err.value) and str(tiny_disk) not in str(err.value)
        assert client.has_model(kept) and client.health()


def test_measuring_a_stored_model_on_a_full_disk_still_measures(tiny_disk, tmp_path):
    with fault_agent(tiny_disk, store={"min_free_bytes": 0}) as agent:
        client = agent.client()
        sha = client.upload(model_file(tmp_path, 0, width=32)).model.sha256
        with open(tiny_disk / "store" / "filler", "wb", buffering=0) as filler:  # fill the disk to the last byte
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 65536)
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0")
        with pytest.raises(OSError) as full:
            (tiny_disk / "store" / "probe").write_bytes(b"x" * 4096)
        assert full.value.errno == errno.ENOSPC
        r = measure(client, sha)
        assert outcome_name(r) in MEASURED, r.message


def test_lru_order_holds_within_one_second(tmp_path):
    size = len(build_onnx_bytes(width=32, seed=0))
    with fault_agent(tmp_path / "agent", store={"quota_bytes": int(3.5 * size)}) as agent:
        client = agent.client()
        shas = [client.upload(model_file(tmp_path, s, width=32)).model.sha256 for s in range(3)]
        assert outcome_name(measure(client, shas[0])) in MEASURED
        reply = client.upload(model_file(tmp_path, 3, width=32))
        assert list(reply.evicted_sha256) == [shas[1]], (shas, list(reply.evicted_sha256))
        assert [m.sha256 for m in client.list_models().models][:2] == [reply.model.sha256, shas[0]]
