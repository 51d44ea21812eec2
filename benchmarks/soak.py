"""Soak: can a crowd of clients, some of them broken, wedge one agent?

Starts a real ``fleetnas-agent serve`` on 127.0.0.1 (port 0, its own temporary store), then N client threads for M
minutes each loop over a random mix of: uploads of small models (new and already stored), measurements with short
timings, bad requests (non-finite and huge timing values, unknown models, malformed upload headers) and stalled
upload streams (a header, then silence past the agent's upload idle timeout). A prober checks health every 100 ms
throughout. Everything is bounded: every call has a deadline, and the run stops by itself.

Printed: requests sent and answered (an answer is a measurement or a typed gRPC status; a client-side deadline or
a broken connection is not), answers by status, health-check latency p50/p99/max during the soak, the agent's RSS
growth from after warm-up to the end, worker processes alive beyond the expected two (running + spare) during the
soak, the agent's exit time after SIGTERM, and worker processes left behind after it exited (orphans).
Targets: all answered, health p99 < 100 ms, 0 orphans, RSS growth < 10 MB.

    nice python benchmarks/soak.py [--clients 4] [--minutes 1] [--seed 0] [--json]
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

import grpc

from fleetnas.agent.measure.reference_model import write_reference_model
from fleetnas.agent.measure.worker_spawn import CHILD_MODULE
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import WireClient, outcome_name

UPLOAD_IDLE_S = 2.0
QUICK = pb.TimingConfig(warmup_runs=1, warmup_s=0.01, blocks=2, min_runs_per_block=3, min_block_s=0.02, timeout_s=20)
TYPED_STATUSES = {"INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "UNAUTHENTICATED"}
IDLE_CLOSED = "DEADLINE_EXCEEDED (closed idle by the agent)"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def workers_of(agent_pid: int) -> List[int]:
    """Live worker processes started by the agent (a worker's last argument is its agent's pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if CHILD_MODULE.encode() in argv and argv[-2:-1] == [str(agent_pid).encode()] and state != "Z":
            found.append(int(entry.name))
    return found


def start_agent(workdir: Path) -> subprocess.Popen:
    port_file = workdir / "port"
    proc = subprocess.Popen([sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0",
                             "--cache-dir", str(workdir / "cache"), "--port-file", str(port_file),
                             "--cache-quota-mb", "16", "--upload-idle-s", str(UPLOAD_IDLE_S),
                             "--max-measure-s", "30", "--log-level", "WARNING"],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / "agent.log", "wb"))
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"agent did not start; see {workdir / 'agent.log'}")
        time.sleep(0.1)
    proc.port = int(port_file.read_text())
    return proc


class Soak:
    def __init__(self, address: str, models: List[Path], seed: int) -> None:
        self.address, self.models, self.seed = address, models, seed
        self.lock = threading.Lock()
        self.sent = collections.Counter()
        self.answers = collections.Counter()
        self.unanswered: List[str] = []
        self.stored: List[str] = []

    def record(self, kind: str, answer: str, typed: bool) -> None:
        with self.lock:
            self.sent[kind] += 1
            self.answers[answer] += 1
            if not typed:
                self.unanswered.append(f"{kind}: {answer}")

    def client_loop(self, index: int, until: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        client = WireClient(self.address, timeout_s=30)
        actions = [self.upload, self.measure, self.measure, self.bad_request, self.stalled_upload]
        while time.monotonic() < until:
            action = rng.choice(actions)
            try:
                kind, answer = action(client, rng)
                self.record(kind, answer, True)
            except AgentCallError as exc:
                self.record(action.__name__, exc.code, exc.code in TYPED_STATUSES)
            except grpc.RpcError as exc:
                code = exc.code().name
                if code == "DEADLINE_EXCEEDED" and "idle" in (exc.details() or ""):
                    self.record(action.__name__, IDLE_CLOSED, True)
                else:
                    self.record(action.__name__, code, code in TYPED_STATUSES)
        client.close()

    def upload(self, client: WireClient, rng: random.Random):
        reply = client.upload(rng.choice(self.models), timeout_s=60)
        with self.lock:
            self.stored.append(reply.model.sha256)
        return "upload", "OK (already stored)" if reply.already_present else "OK"

    def measure(self, client: WireClient, rng: random.Random):
        with self.lock:
            sha = rng.choice(self.stored) if self.stored else "0" * 64
        r = client.measure(sha, options=pb.RuntimeOptions(threads=1), timing=QUICK, timeout_s=120)
        return "measure", f"measured {outcome_name(r)}"

    def bad_request(self, client: WireClient, rng: random.Random):
        with self.lock:
            sha = rng.choice(self.stored) if self.stored else "0" * 64
        spoilt = pb.TimingConfig()
        spoilt.CopyFrom(QUICK)
        setattr(spoilt, rng.choice(["timeout_s", "warmup_s", "min_block_s"]), rng.choice([math.nan, math.inf, 1e300]))
        choice = rng.randrange(3)
        if choice == 0:
            client.measure(sha, timing=spoilt, timeout_s=30)
        elif choice == 1:
            client.measure("ab" * 32, timing=QUICK, timeout_s=30)
        else:
            head = pb.UploadHeader(sha256="cd" * 32, size_bytes=rng.choice([-1, 0, 2**62]), format=pb.MODEL_FORMAT_ONNX)
            client._stub.UploadModel(iter([pb.UploadModelRequest(header=head)]), timeout=30)
        return "bad request", "answered OK (should have been refused)"

    def stalled_upload(self, client: WireClient, rng: random.Random):
        model = rng.choice(self.models)

        def parts():
            yield pb.UploadModelRequest(header=pb.UploadHeader(sha256="ef" * 32, size_bytes=model.stat().st_size,
                                                               format=pb.MODEL_FORMAT_ONNX))
            time.sleep(UPLOAD_IDLE_S * 3)  # the agent closes the stream long before this
        client._stub.UploadModel(parts(), timeout=UPLOAD_IDLE_S * 6)
        return "stalled upload", "answered OK (should have been closed)"


def percentile(values: List[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 64 and 0 < args.minutes <= 60):
        parser.error("--clients must be 1-64 and --minutes in (0, 60]")
    with tempfile.TemporaryDirectory(prefix="fleetnas-soak-") as tmp:
        workdir = Path(tmp)
        models = [write_reference_model(workdir / f"m{s}", "onnx", width=32, seed=s) for s in range(6)]
        agent = start_agent(workdir)
        address = f"127.0.0.1:{agent.port}"
        soak = Soak(address, models, args.seed)
        warm = WireClient(address)
        soak.stored.append(warm.upload(models[0]).model.sha256)
        warm.measure(soak.stored[0], options=pb.RuntimeOptions(threads=1), timing=QUICK, timeout_s=120)
        time.sleep(1.0)
        rss_start = rss_bytes(agent.pid)
        until = time.monotonic() + args.minutes * 60
        stop = threading.Event()
        health_ms: List[float] = []
        most_workers = [0]

        def probe() -> None:
            while not stop.is_set():
                start = time.monotonic()
                ok = warm.health(timeout_s=5.0)
                health_ms.append((time.monotonic() - start) * 1e3 if ok else float("inf"))
                most_workers[0] = max(most_workers[0], len(workers_of(agent.pid)))
                stop.wait(0.1)
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        clients = [threading.Thread(target=soak.client_loop, args=(i, until)) for i in range(args.clients)]
        started = time.monotonic()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        soak_s = time.monotonic() - started
        stop.set()
        prober.join()
        time.sleep(1.0)
        rss_end = rss_bytes(agent.pid)
        warm.close()
        sent_sigterm = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        exit_s = time.monotonic() - sent_sigterm
        time.sleep(0.5)
        orphans = workers_of(agent.pid)
    report: Dict[str, object] = {
        "clients": args.clients, "soak_s": round(soak_s, 1),
        "requests_sent": sum(soak.sent.values()), "requests_answered": sum(soak.sent.values()) - len(soak.unanswered),
        "sent_by_kind": dict(soak.sent), "answers": dict(soak.answers), "unanswered": soak.unanswered[:20],
        "health_checks": len(health_ms), "health_p50_ms": round(percentile(health_ms, 0.5), 2),
        "health_p99_ms": round(percentile(health_ms, 0.99), 2), "health_max_ms": round(max(health_ms), 2),
        "rss_start_mb": round(rss_start / 2**20, 1), "rss_growth_mb": round((rss_end - rss_start) / 2**20, 1),
        "most_workers_alive": most_workers[0], "agent_exit_after_sigterm_s": round(exit_s, 2),
        "agent_exit_code": agent.returncode, "orphan_workers": len(orphans),
    }
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
    ok = (not soak.unanswered and report["health_p99_ms"] < 100 and not orphans
          and report["rss_growth_mb"] < 10)
    print("targets met" if ok else "targets NOT met: all answered, health p99 < 100 ms, 0 orphans, RSS growth < 10 MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
