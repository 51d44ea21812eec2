"""Throttle evidence beyond fleetnas.agent.board.device_state's counters: Raspberry Pi flag decoding, Jetson power mode.

device_state.throttle_counters() already reads x86 ``thermal_throttle/*_throttle_count`` and the Pi's
``vcgencmd get_throttled``; this module adds Jetson ``nvpmodel -q`` and the event rules that need decoding:
- Pi ``get_throttled`` bits 0-3 are "happening now" (under-voltage, ARM frequency capped, throttled, soft temperature
  limit), bits 16-19 the same "has occurred since boot" (sticky): a sticky bit newly set between the snapshots
  before and after a run means it happened during the run, even if it is over by the end;
- a Jetson power mode that changed during the run (nvpmodel switched by someone, or by thermal management).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from typing import List, Optional, Tuple

from fleetnas.agent.board.device_state import throttle_events as counter_events
from fleetnas.agent.records import DeviceState

PI_FLAGS = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}
PI_STICKY_SHIFT = 16
NVPMODEL_KEY = "nvpmodel"
VCGENCMD_KEY = "vcgencmd_throttled"  # the key fleetnas.agent.board.device_state uses


def decode_get_throttled(value: str) -> Tuple[List[str], List[str]]:
    """('now' flags, 'since boot' flags) from a ``get_throttled`` value such as "0x50005"."""
    try:
        bits = int(value, 16)
    except ValueError:
        return [], []
    now = [name for bit, name in PI_FLAGS.items() if bits & (1 << bit)]
    past = [name for bit, name in PI_FLAGS.items() if bits & (1 << (bit + PI_STICKY_SHIFT))]
    return now, past


def nvpmodel_mode(timeout_s: float = 5.0) -> Optional[str]:
    """The Jetson power mode from ``nvpmodel -q`` ("MAXN (0)"), None where nvpmodel is absent or fails."""
    path = shutil.which("nvpmodel")
    if not path:
        return None
    try:
        done = subprocess.run([path, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    text = done.stdout.decode("utf-8", "replace")
    name = re.search(r"NV Power Mode:\s*(\S+)", text)
    number = re.search(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    if not name:
        return None
    return f"{name.group(1)} ({number.group(1)})" if number else name.group(1)


def extra_flags() -> Tuple[Tuple[str, str], ...]:
    """Flags device_state does not read itself (today: the Jetson power mode)."""
    mode = nvpmodel_mode()
    return ((NVPMODEL_KEY, mode),) if mode is not None else ()


def with_flags(state: Optional[DeviceState], flags: Tuple[Tuple[str, str], ...]) -> Optional[DeviceState]:
    """The snapshot with flags added where it lacks them (read at nearly the same moment by the caller)."""
    if state is None or not flags:
        return state
    present = {k for k, _ in state.throttle}
    return replace(state, throttle=tuple(state.throttle) + tuple((k, v) for k, v in flags if k not in present))


def throttle_events(before: Optional[DeviceState], after: Optional[DeviceState]) -> List[str]:
    """Why the run cannot be trusted: device_state's counter rules plus sticky Pi bits and a power-mode change."""
    reasons = list(counter_events(before, after))
    if before is None or after is None:
        return reasons
    old, new = dict(before.throttle), dict(after.throttle)
    if VCGENCMD_KEY in old and VCGENCMD_KEY in new:
        _, past_before = decode_get_throttled(old[VCGENCMD_KEY])
        _, past_after = decode_get_throttled(new[VCGENCMD_KEY])
        occurred = [flag for flag in past_after if flag not in past_before]
        if occurred:
            reasons.append(f"Pi {', '.join(occurred)} occurred during the run "
                           f"(get_throttled {old[VCGENCMD_KEY]} -> {new[VCGENCMD_KEY]})")
    if NVPMODEL_KEY in old and NVPMODEL_KEY in new and old[NVPMODEL_KEY] != new[NVPMODEL_KEY]:
        reasons.append(f"Jetson power mode changed during the run: {old[NVPMODEL_KEY]} -> {new[NVPMODEL_KEY]}")
    return reasons
