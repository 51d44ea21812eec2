"""Raspberry Pi 5: the PMIC's ADC through ``vcgencmd pmic_read_adc``; power = sum over rails of V * I.

Output lines look like ``  VDD_CORE_A current(7)=2.51000000A`` and ``  VDD_CORE_V volt(15)=0.87000000V``; a rail
counts when it has both. These are the PMIC's output rails only (not the USB-C input), and each read forks a
process, so the sampler reaches ~10-20 Hz at best: the window grows to 20 of those periods.
"""
from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

from fleetnas.agent.power.base import (
    INSTANT, MeterSettings, PowerMeter, SensorGarbage, SensorPermissionDenied, SensorUnavailable)
from fleetnas.agent.power.command import find_command, run_command

COMMAND = ("vcgencmd", "pmic_read_adc")
_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=\s*([-+0-9.eE]+)\s*([AV])\s*$")


def parse_pmic_read_adc(text: str) -> Dict[str, Tuple[float, float]]:
    """{rail: (volts, amps)} for every rail that reports both."""
    volts, amps = {}, {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        rail, kind, value, unit = match.groups()
        if kind != unit:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        (amps if kind == "A" else volts)[rail] = number
    return {rail: (volts[rail], amps[rail]) for rail in sorted(volts) if rail in amps}


class RaspberryPi5Meter(PowerMeter):
    name = "rpi5-pmic"
    kind = INSTANT
    units = "V,A"
    update_period_s = 0.0   # the fork of vcgencmd is the limit; measured at start-up
    max_power_w = 50.0

    @classmethod
    def for_board(cls, root: Optional[str], settings: MeterSettings) -> "RaspberryPi5Meter":
        return cls()  # reads vcgencmd from PATH, not sysfs

    def __init__(self) -> None:
        path = find_command(COMMAND[0])
        if not path:
            raise SensorUnavailable("vcgencmd not found on PATH (Raspberry Pi 5 with its firmware tools only)")
        rails = parse_pmic_read_adc(run_command(COMMAND))
        if not rails:
            raise SensorUnavailable(
                f"{' '.join(COMMAND)} reported no rail with both volts and amps (a Pi 4 or older has no PMIC ADC)")
        super().__init__(source=f"{path} {COMMAND[1]}", rails=list(rails), total_rail="+".join(rails))  # disjoint outputs

    def _read(self) -> float:
        try:
            text = run_command(COMMAND)
        except SensorPermissionDenied as exc:
            raise SensorPermissionDenied(f"{exc}; add the agent's user to the 'video' group "
                                         "(sudo usermod -aG video USER) so vcgencmd can open /dev/vcio") from None
        rails = parse_pmic_read_adc(text)
        if not rails:
            raise SensorGarbage(f"{' '.join(COMMAND)} printed no rail readings: {text.strip()[:80]!r}")
        return sum(volts * amps for volts, amps in rails.values())
