"""Which devices can take work, and what a failed call means for the job and the device.

- ``AgentUnreachable`` (down, cut off, no answer in time): the device is *suspect*; the job goes back to the front of
  its class queue for another device; the suspect device reconnects with exponential backoff.
- ``ModelNotFound`` (evicted between HasModel and Measure): upload again and retry.
- ``AgentBusy``: wait a moment and retry.
- anything else (a refused request, a missing runtime, a wrong token): the job fails now, as an ERROR result.
A job that failed ``max_attempts`` times, or whose class had no reachable device for ``give_up_s``, is an ERROR result.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from fleetnas.host.errors import AgentBusy, AgentCallError, AgentUnreachable, ModelNotFound
from fleetnas.host.fleet.contract import DeviceInfo
from fleetnas.host.fleet.devices import Device

log = logging.getLogger("fleetnas.host.fleet")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    give_up_s: float = 300.0                    # a class with no reachable device this long: its jobs fail
    backoff_s: Tuple[float, float] = (0.25, 10.0)   # reconnect delay: first, then doubling up to the second

    def next_delay(self, delay_s: float) -> float:
        return min(delay_s * 2, self.backoff_s[1])


class Retry(enum.Enum):
    ELSEWHERE = "the device is suspect: another of its class takes the job"
    UPLOAD_AGAIN = "the agent evicted the model: upload it again"
    LATER = "the agent is busy: try again shortly"
    FAIL = "the job fails now"


def retry_for(error: AgentCallError) -> Retry:
    if isinstance(error, AgentUnreachable):
        return Retry.ELSEWHERE
    if isinstance(error, ModelNotFound):
        return Retry.UPLOAD_AGAIN
    if isinstance(error, AgentBusy):
        return Retry.LATER
    return Retry.FAIL


@dataclass
class DeviceStatus:
    device: Device
    state: str = "connecting"        # connecting | idle | uploading | measuring | suspect | stopped
    fingerprint: str = ""            # the cache identity (DeviceInfo.cache_identity)
    info: Optional[DeviceInfo] = None   # last answer to GetDeviceInfo
    measured: int = 0
    cache_hits: int = 0
    uploads: int = 0
    failures: int = 0
    last_error: str = ""
    suspect_since: float = 0.0
    busy_s: float = 0.0

    def connected(self, info: DeviceInfo) -> None:
        if self.state == "suspect":
            log.info("device %s answers again (%s)", self.device.name, self.device.address)
        self.info, self.fingerprint = info, info.cache_identity
        self.state = "idle"

    def suspect(self, reason: str, peers: Sequence["DeviceStatus"]) -> None:
        """Mark this device suspect; warn once when that leaves its class without a device."""
        if self.state != "suspect":
            log.warning("device %s suspect: %s", self.device.name, reason)
            self.suspect_since = time.monotonic()
            self.state = "suspect"
            if all(p.state == "suspect" for p in peers):
                log.warning("device class %s has no reachable device left; its jobs wait (up to the give-up time)",
                            self.device.device_class)
        self.last_error = reason


def unreachable_for(peers: Sequence[DeviceStatus]) -> float:
    """How long every device of a class has been suspect (0 while one of them is not)."""
    if any(p.state != "suspect" for p in peers):
        return 0.0
    return time.monotonic() - max(p.suspect_since for p in peers)
