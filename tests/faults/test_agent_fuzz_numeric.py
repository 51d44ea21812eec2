"""Fuzz (slow): Measure requests and upload headers whose numeric fields take non-finite and extreme values, many at
once, against one real agent. Every answer must be typed (INVALID_ARGUMENT naming a field, or a measurement with a
typed outcome), no run may outlive the agent's ceiling, and the agent must keep serving.

    python -m pytest -m slow tests/faults/test_agent_fuzz_numeric.py -q
"""
import math
import os
import random
import time

import grpc
import pytest

from agent_fault_kit import fault_agent, quick_timing, small_model
from fleetnas.agent.rpc.convert import REQUEST_BOUNDS
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import outcome_name

pytestmark = pytest.mark.slow

N_REQUESTS = int(os.environ.get("FLEETNAS_FUZZ_NUMERIC", "300"))
SEED = 15
CEILING_S = 3.0
DOUBLES = [math.nan, math.inf, -math.inf, 1e300, -1e300, 5e-324, -0.0, 0.0, 1e-9, 0.01, 1e9, 2.0**63]
INT32S = [0, 1, 2, -1, 2**31 - 1, -2**31, 1000, 4096]
INT64S = INT32S + [2**63 - 1, -2**63, 2**40 + 1]
UINT64S = [0, 1, 2**64 - 1, 2**32]
TIMING_DOUBLES = ("warmup_s", "min_block_s", "timeout_s")
TIMING_INTS = ("warmup_runs", "blocks", "min_runs_per_block")
TYPED = {"OK", "UNSTABLE", "LOAD_FAILED", "RUN_FAILED", "TIMEOUT", "OOM", "CRASHED"}


def spoiled_measure(sha: str, rng: random.Random) -> pb.MeasureRequest:
    timing = quick_timing(timeout_s=CEILING_S)
    for name in rng.sample(TIMING_DOUBLES + TIMING_INTS, rng.randint(1, 3)):
        setattr(timing, name, rng.choice(DOUBLES if name in TIMING_DOUBLES else INT32S))
    timing.input_seed = rng.choice(UINT64S)
    options = pb.RuntimeOptions(threads=rng.choice(INT32S) if rng.random() < 0.5 else 1)
    if rng.random() < 0.3:
        options.cpu_affinity.extend(rng.choice(INT32S) for _ in range(rng.randint(1, 3)))
    energy = pb.EnergyConfig(enabled=rng.random() < 0.5, min_window_s=rng.choice(DOUBLES) if rng.random() < 0.3 else 0,
                             idle_s=rng.choice(DOUBLES) if rng.random() < 0.3 else 0.01)
    return pb.MeasureRequest(model_sha256=sha, runtime="onnxruntime", options=options, timing=timing, energy=energy)


def test_extreme_numbers_in_every_field_end_as_typed_answers(tmp_path):
    rng = random.Random(SEED)
    counts = {"refused": 0, "measured": 0, "upload_refused": 0}
    with fault_agent(tmp_path / "agent", service={"max_measure_s": CEILING_S}) as agent:
        client = agent.client()
        sha, _ = client.ensure_model(small_model(tmp_path / "m"))
        for i in range(N_REQUESTS):
            if i % 5 == 4:  # an upload header with extreme numbers
                head = pb.UploadHeader(sha256="cd" * 32, size_bytes=rng.choice(INT64S),
                                       format=rng.choice([0, 1, 2, 3, 99, 2**31 - 1]))
                try:
                    client._stub.UploadModel(iter([pb.UploadModelRequest(header=head),
                                                   pb.UploadModelRequest(chunk=b"\0" * 64)]), timeout=10)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (head, exc.details())
                    counts["upload_refused"] += 1
                continue
            request = spoiled_measure(sha, rng)
            start = time.monotonic()
            try:
                r = client.measure_request(request, timeout_s=60)
            except AgentCallError as exc:
                assert exc.code == "INVALID_ARGUMENT", (request, exc)
                assert any(name in str(exc) for name in REQUEST_BOUNDS), exc
                counts["refused"] += 1
                continue
            assert outcome_name(r) in TYPED, (request, r.message)
            assert time.monotonic() - start < CEILING_S + 10, request
            counts["measured"] += 1
            if i % 25 == 0:
                assert client.health(), f"agent stopped answering health after {i} requests"
        assert client.health() and client.device_info().device_id
    print(f"\nnumeric fuzz over {N_REQUESTS} requests: {counts}")
    assert counts["refused"] > 0 and counts["measured"] > 0 and counts["upload_refused"] > 0
