"""What dialling out costs: the same calls to a real agent process, direct (`fleetnas-agent serve`) and through the
dial-out stream (`fleetnas-agent connect` to a hub in this process), on 127.0.0.1.

Per path: the median and 90th percentile round trip of HasModel and of the health check (``--calls`` each, after a
warm-up), and the upload rate of a ``--upload-mib`` ONNX model (median of ``--uploads``, each deleted again so every
upload is a full one). Loopback removes the network: what is left is the tunnel's own cost (framing, one more
thread hop on each side), which a real link's round trip adds to.

    python benchmarks/tunnel_overhead.py                           # 300 calls, 3 uploads of 32 MiB
    python benchmarks/tunnel_overhead.py --calls 100 --upload-mib 8 --json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np


def big_onnx_model(path: Path, size_mib: float) -> Path:
    """A valid ONNX model (y = x + w) whose initializer w makes it ``size_mib`` large: the agent accepts it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    n = int(size_mib * 2**20 / 4)
    weights = numpy_helper.from_array(np.random.default_rng(0).random(n, dtype=np.float32), name="w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@contextlib.contextmanager
def agent_process(args: List[str], workdir: Path) -> Iterator[subprocess.Popen]:
    log = open(workdir / "agent.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "fleetnas.agent.cli", *args, "--cache-dir", str(workdir / "cache"),
                             "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def time_calls(client, sha256: str, calls: int) -> Dict[str, float]:
    for _ in range(20):   # warm-up: connection, thread pools, first-call imports
        client.has_model(sha256)
        client.health()
    out: Dict[str, float] = {}
    for name, call in (("has_model", lambda: client.has_model(sha256)), ("health", client.health)):
        times_ms = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            times_ms.append((time.perf_counter() - start) * 1e3)
        out[f"{name}_median_ms"] = statistics.median(times_ms)
        out[f"{name}_p90_ms"] = float(np.percentile(times_ms, 90))
    return out


def time_uploads(client, model: Path, uploads: int) -> Dict[str, float]:
    size_mib = model.stat().st_size / 2**20
    rates = []
    for _ in range(uploads):
        start = time.perf_counter()
        result = client.upload(model)
        rates.append(size_mib / (time.perf_counter() - start))
        client.delete_model(result.model.sha256)
    return {"upload_mib_s": statistics.median(rates), "upload_mib": size_mib}


def measure(client, model: Path, calls: int, uploads: int) -> Dict[str, float]:
    return {**time_calls(client, "ab" * 32, calls), **time_uploads(client, model, uploads)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="round trips per call kind and path")
    parser.add_argument("--uploads", type=int, default=3, help="uploads per path (median rate)")
    parser.add_argument("--upload-mib", type=float, default=32.0, help="model size for the upload rate")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()

    from fleetnas.host.fleet.client import AgentClient
    from fleetnas.host.fleet.devices import parse_devices
    from fleetnas.host.fleet.dial_in import dial_in_client, set_hub
    from fleetnas.host.fleet.hub import Hub

    results: Dict[str, Dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="fleetnas-tunnel-") as tmp:
        tmp_path = Path(tmp)
        model = big_onnx_model(tmp_path / "big.onnx", opts.upload_mib)
        token = tmp_path / "token"
        token.write_text("benchmark-token\n")
        token.chmod(0o600)

        (tmp_path / "direct").mkdir()
        port_file = tmp_path / "direct" / "port"
        with agent_process(["serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                            "--token-file", str(token)], tmp_path / "direct"):
            while not (port_file.exists() and port_file.read_text().strip()):
                time.sleep(0.05)
            with AgentClient(f"127.0.0.1:{port_file.read_text().strip()}", token="benchmark-token",
                             timeout_s=120) as client:
                client.wait_ready(60)
                results["direct"] = measure(client, model, opts.calls, opts.uploads)

        registry = parse_devices(f'[[device]]\nname = "bench"\naddress = "dial-in"\nclass = "x"\n'
                                 f'token_file = "{token}"\n', tmp_path / "devices.toml")
        hub = Hub(list(registry))
        port = hub.start("127.0.0.1:0")
        set_hub(hub)
        (tmp_path / "tunnel").mkdir()
        try:
            with agent_process(["connect", f"127.0.0.1:{port}", "--name", "bench", "--token-file", str(token)],
                               tmp_path / "tunnel"):
                if hub.wait_for(["bench"], 120):
                    raise SystemExit("the dialling agent did not connect within 120 s; see its log")
                with dial_in_client(registry.by_name["bench"], timeout_s=120) as client:
                    results["tunnel"] = measure(client, model, opts.calls, opts.uploads)
        finally:
            set_hub(None)
            hub.stop()

    if opts.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return 0
    d, t = results["direct"], results["tunnel"]
    print(f"{opts.calls} calls each, {opts.uploads} uploads of {d['upload_mib']:.0f} MiB, 127.0.0.1")
    print(f"{'':24}{'direct':>10}{'tunnel':>10}{'tunnel/direct':>15}")
    for key, label in (("has_model_median_ms", "HasModel median ms"), ("has_model_p90_ms", "HasModel p90 ms"),
                       ("health_median_ms", "health median ms"), ("health_p90_ms", "health p90 ms"),
                       ("upload_mib_s", "upload MiB/s")):
        print(f"{label:24}{d[key]:>10.2f}{t[key]:>10.2f}{t[key] / d[key]:>14.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
