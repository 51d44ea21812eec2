"""Fuzz (slow): 1,000 mutated uploads of real ONNX and .tflite files through a real in-process agent, each measured.

Mutations (seeded): truncation, bit flips, wrong magic, and a valid container around a garbage graph. Every upload
must end as a typed answer: refused with INVALID_ARGUMENT, or stored and measured with any typed outcome. The agent
must keep serving throughout, and its memory must return near the idle level afterwards.

    python -m pytest -m slow tests/agent/test_fuzz_uploads.py -q
"""
import collections
import gc
import os
import random
import shutil

import pytest
from models import make_onnx_all_dtypes_model, make_onnx_model, make_tflite_model

from fleetnas.agent.board import sysfs
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import outcome_name

pytestmark = pytest.mark.slow

N_UPLOADS = int(os.environ.get("FLEETNAS_FUZZ_UPLOADS", "1000"))  # fewer for a quick local look
SEED = 2026
ONE_RUN = pb.TimingConfig(warmup_runs=1, warmup_s=0.001, blocks=1, min_runs_per_block=1, min_block_s=0.001,
                          timeout_s=60)
TYPED_OUTCOMES = {"OK", "UNSTABLE", "LOAD_FAILED", "RUN_FAILED", "TIMEOUT", "OOM", "CRASHED"}
# Headroom for allocator high-water marks and gRPC buffers; a leak of a model per upload would be far larger.
RSS_SLACK_BYTES = 80 * 2**20


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(0, len(data))]


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def wrong_magic(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    start = 4 if data[4:8] == b"TFL3" else 0  # the flatbuffer identifier, or the first protobuf tags
    out[start:start + 4] = bytes(rng.randrange(256) for _ in range(4))
    return bytes(out)


def garbage_graph(data: bytes, rng: random.Random) -> bytes:
    """Keep the container's framing, replace what it holds with noise of the same size."""
    if data[4:8] == b"TFL3":
        body = bytes(rng.randrange(256) for _ in range(len(data) - 8))
        return data[:8] + body
    graph = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
    # ModelProto{ir_version=8, graph=<noise>} (field 7, length-delimited)
    return b"\x08\x08" + b"\x3a" + _varint(len(graph)) + graph


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


MUTATIONS = (truncate, flip_bits, wrong_magic, garbage_graph)


def own_rss_bytes() -> int:
    return sysfs.proc_status_bytes("self", "VmRSS") or 0


def test_mutated_uploads_never_crash_the_agent(agent, tmp_path):
    bases = [make_onnx_model(tmp_path / "tiny.onnx", cost="tiny"), make_onnx_model(tmp_path / "small.onnx"),
             make_onnx_all_dtypes_model(tmp_path / "dtypes.onnx"),
             make_tflite_model(tmp_path / "tiny.tflite", cost="tiny"), make_tflite_model(tmp_path / "small.tflite")]
    originals = [(p, p.read_bytes()) for p in bases]
    client = agent.client()
    rng = random.Random(SEED)

    def one(i: int) -> str:
        base, data = originals[rng.randrange(len(originals))]
        mutate = MUTATIONS[i % len(MUTATIONS)]
        path = tmp_path / "case" / f"{i}{base.suffix}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(mutate(data, rng) or b"\x00")
        try:
            sha, _ = client.ensure_model(path)
        except AgentCallError as exc:
            assert exc.code == "INVALID_ARGUMENT" and str(exc), (mutate.__name__, exc)
            return "refused"
        finally:
            path.unlink()
        runtime = "litert" if base.suffix == ".tflite" else "onnxruntime"
        result = client.measure(sha, runtime=runtime, options=pb.RuntimeOptions(threads=1), timing=ONE_RUN)
        name = outcome_name(result)
        assert name in TYPED_OUTCOMES, (mutate.__name__, name, result.message)
        assert name in ("OK", "UNSTABLE") or result.message, (mutate.__name__, name)
        client.delete_model(sha)
        return name

    for i in range(20):  # reach steady state (gRPC buffers, first imports) before taking the idle figure
        one(i)
    gc.collect()
    idle_rss = own_rss_bytes()
    counts = collections.Counter()
    for i in range(20, N_UPLOADS):
        counts[one(i)] += 1
        if i % 50 == 0:
            assert client.health(), f"agent stopped serving after {i} uploads"
    assert client.health() and client.device_info().device_id
    gc.collect()
    grown = own_rss_bytes() - idle_rss
    print(f"\nfuzz outcomes over {N_UPLOADS - 20} uploads: {dict(counts)}; RSS change {grown / 2**20:+.1f} MiB")
    assert grown < RSS_SLACK_BYTES, f"agent memory grew by {grown / 2**20:.0f} MiB over the fuzz run"
    assert counts["refused"] > 0 and sum(counts.values()) == N_UPLOADS - 20
    shutil.rmtree(tmp_path / "case", ignore_errors=True)
