"""Crash recovery: a candidate in flight when a previous host died may already be measured (or still measuring) on
any agent of its class. Agents remember results by request id, so ask each (``replay_only``) before measuring again."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import AgentClient
from fleetnas.host.fleet.contract import MeasureResult, RuntimeConfig
from fleetnas.host.fleet.devices import DeviceRegistry
from fleetnas.host.fleet.health import DeviceStatus
from fleetnas.host.fleet.jobs import Job, request_id

log = logging.getLogger("fleetnas.host.fleet")


@dataclass(frozen=True)
class Recovered:
    status: DeviceStatus      # the device whose agent had the measurement
    fingerprint: str
    result: MeasureResult


def replay(job: Job, asking: DeviceStatus, own_client: AgentClient, registry: DeviceRegistry,
           statuses: Dict[str, DeviceStatus], runtime: RuntimeConfig,
           connect: Callable[..., AgentClient], run_uid: str) -> Optional[Recovered]:
    """The measurement of ``job`` that some agent of its class holds, or None when none has it.

    ``asking`` is the device whose worker took the job (it asks through ``own_client``); suspect or stopped peers
    are skipped; ``connect(device)`` opens a short-lived client to a peer. Only this run's request (``run_uid``) is
    asked for: an answer to any other request is not taken."""
    for peer in registry.by_class[job.device_class]:
        peer_status = statuses[peer.name]
        if peer_status.state in ("suspect", "stopped") and peer_status is not asking:
            continue
        client = own_client if peer_status is asking else connect(peer)
        try:
            fingerprint = peer_status.fingerprint or client.device_info().cache_identity
            wanted = request_id(job, run_uid)
            result = client.measure(job.model_sha256, runtime, request_id=wanted, replay_only=True)
        except AgentCallError:   # ModelNotFound (never had it), or unreachable: ask the next one
            continue
        finally:
            if client is not own_client:
                client.close()
        if result.request_id != wanted:
            continue              # not the answer to this run's request: never taken
        log.info("%s: in-flight measurement of %s recovered from %s", job.device_class, job.config_key, peer.name)
        return Recovered(peer_status, fingerprint, result)
    return None
