"""The board has no power sensor we can read (a Raspberry Pi 4): energy is unavailable, with the reason.

It never produces a number: reading it raises SensorUnavailable with the reason collected by detection.
"""
from __future__ import annotations

from fleetnas.agent.power.base import INSTANT, PowerMeter, SensorUnavailable

NO_SENSOR = ("no power sensor found on this board (Jetson INA3221/INA238, Raspberry Pi 5 PMIC, Android battery, "
             "RAPL, NVML); measure with an external USB meter: energy is reported as unavailable")


class NullMeter(PowerMeter):
    name = "none"
    kind = INSTANT
    units = ""

    def __init__(self, reason: str = NO_SENSOR) -> None:
        super().__init__(source="", rails=(), total_rail="")
        self.reason = reason

    def _read(self):
        raise SensorUnavailable(self.reason)
