"""A real agent in this process on 127.0.0.1 port 0 (real store, real worker processes, real gRPC).

Used by the agent, host and end-to-end tests:

    with running_agent(tmp_path, token="s3cret") as agent:
        client = agent.client(token="s3cret")
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from fleetnas.agent.board.device_info import DeviceInfoSource
from fleetnas.agent.rpc.server import TlsFiles, make_server
from fleetnas.agent.app import make_service
from fleetnas.agent.measure.service import AgentService
from fleetnas.agent.store.model_store import ModelStore

# Short timing for tests: every phase runs, quickly.
FAST_TIMING = dict(warmup_runs=2, warmup_s=0.05, blocks=3, min_runs_per_block=5, min_block_s=0.05, timeout_s=60.0)


@dataclass
class RunningAgent:
    port: int
    service: AgentService
    server: object
    address: str

    def client(self, **kwargs):
        """A client speaking the contract's messages (tests of the wire protocol); host code uses AgentClient."""
        from fleetnas.host.fleet.client import WireClient
        return WireClient(self.address, **kwargs)

    def stop(self) -> None:
        self.server.stop(grace=None).wait()


@contextlib.contextmanager
def running_agent(cache_dir: Path, *, token: Optional[str] = None, tls: Optional[TlsFiles] = None,
                  quota_bytes: int = 64 * 2**20, measure_fn=None, emulated: bool = False) -> Iterator[RunningAgent]:
    """``emulated``: the agent says so, as ``serve --emulate`` does (``measure_fn`` answers from a table)."""
    service = make_service(ModelStore(Path(cache_dir) / "store", quota_bytes=quota_bytes), Path(cache_dir),
                           measure_fn=measure_fn, emulated=emulated)
    source = DeviceInfoSource(service, state_dir=cache_dir, emulated=emulated)
    server, port = make_server(service, listen="127.0.0.1:0", device_info=source.device_info,
                               device_id=source.device_id, token=token, tls=tls)
    source.fingerprint  # wait for the background collection: tests start from a fully ready agent
    agent = RunningAgent(port, service, server, f"127.0.0.1:{port}")
    try:
        yield agent
    finally:
        agent.stop()
