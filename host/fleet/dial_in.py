"""Dial-in devices (``address = "dial-in"`` in devices.toml): the hub this process serves them from, and clients
that reach a device through its stream. Everything above ``AgentClient`` is unchanged: a dial-in device is measured,
suspected and re-dispatched exactly as a device the host connects to.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, List, Optional

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.hub import Hub

if TYPE_CHECKING:   # devices.py reaches this module through Device.client(): type-only, no cycle
    from fleetnas.host.fleet.devices import Device

_lock = threading.Lock()
_hub: Optional[Hub] = None


def set_hub(hub: Optional[Hub]) -> None:
    """The hub dial-in devices connect to in this process (one per process: one --listen address)."""
    global _hub
    with _lock:
        _hub = hub


def current_hub() -> Optional[Hub]:
    with _lock:
        return _hub


def dial_in_devices(devices) -> List["Device"]:
    return [d for d in devices if d.dial_in]


def dial_in_client(device: "Device", timeout_s: float = 30.0):
    """An AgentClient whose calls travel over ``device``'s stream to the current hub."""
    from fleetnas.host.fleet.client import AgentClient
    from fleetnas.host.fleet.tunnel import TunnelChannel
    hub = current_hub()
    if hub is None:
        raise UsageError(f"device {device.name} is dial-in: add --listen HOST:PORT (an address its agent can reach) "
                         f"so it can connect")
    return AgentClient(f"dial-in {device.name}", channel=TunnelChannel(device.name, hub.stream), timeout_s=timeout_s)
