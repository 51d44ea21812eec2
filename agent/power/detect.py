"""Finding the board's power meters, measuring their read rate at start-up, and the calibration per device class.

API used by `fleetnas-agent info` and by the measurement service:

- ``detect_meters(root=None, config=None) -> list[PowerSensorInfo]``: every meter family present on this board
  (present = its sysfs files or command exist), each with name, source, rails, total_rail, units, the read rate
  measured now (``sample_rate_hz``), ``readable`` and ``message`` (why not readable and the fix). When no family is
  present the list holds one ``name="none"`` entry whose message says energy is unavailable. These are exactly the
  fields of the proto's PowerSensorInfo.
- ``select_meter(root=None, config=None) -> (PowerMeter, PowerSensorInfo)``: the meter energy is measured with:
  the configured family, else the first readable one in METERS order; a ``NullMeter`` carrying the reasons when
  none is readable. Call it once at start-up; ``meter.sample_rate_hz`` holds the measured rate.
- ``PowerConfig.from_mapping(d)`` / ``load_power_config(path)``: the ``power`` section of the agent's config file
  (JSON or TOML), e.g. ``{"device_class": "rpi5", "total_rail": "", "meter": "", "current_unit": "",
  "sample_period_s": 0.01, "calibration": {"rpi5": {"scale": 1.03, "offset_w": 0.4}}}``; ``calibration_for()``
  gives the device class's Calibration (identity when the class has none), recorded with every EnergyResult.

Meter families come from one registry, ``METERS`` (entry-point group ``fleetnas.power_meters``, see
fleetnas.agent.plugins): the built-ins below in probing order, then any a package registers. Each is a PowerMeter
subclass built with ``for_board(root, config)``.

``root`` defaults to ``$FLEETNAS_SYSFS_ROOT`` (else ``/``); commands (vcgencmd, termux-battery-status) come from PATH.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from fleetnas.agent.config import load_agent_config
from fleetnas.agent.errors import AgentError
from fleetnas.agent.plugins import Registry
from fleetnas.agent.power.base import (
    DEFAULT_SAMPLE_PERIOD_S, Calibration, PowerMeter, SensorError, SensorUnavailable, measure_read_rate_hz)
from fleetnas.agent.power.null import NO_SENSOR, NullMeter
from fleetnas.agent.records import PowerSensorInfo

# Probing order: boards with a dedicated power monitor first, batteries next, CPU/GPU counters last.
METERS = Registry("fleetnas.power_meters", {
    "jetson": "fleetnas.agent.power.jetson:JetsonMeter",
    "rpi5": "fleetnas.agent.power.rpi5:RaspberryPi5Meter",
    "android": "fleetnas.agent.power.android:AndroidBatteryMeter",
    "termux": "fleetnas.agent.power.android:TermuxBatteryMeter",
    "rapl": "fleetnas.agent.power.rapl:RaplMeter",
    "nvml": "fleetnas.agent.power.nvml:NvmlMeter",
}, "power meter")


@dataclass(frozen=True)
class PowerConfig:
    device_class: str = ""
    meter: str = ""                 # force one family from METERS, or "none"
    total_rail: str = ""            # override the known total rail ("+" joins disjoint rails)
    current_unit: str = ""          # Android current_now unit when the kernel's differs from its voltage's
    sample_period_s: float = DEFAULT_SAMPLE_PERIOD_S
    calibration: Dict[str, Calibration] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.meter and self.meter != "none" and self.meter not in METERS:
            raise ValueError(f"power.meter {self.meter!r} is not one of {', '.join(METERS.names())}, none")
        if not self.sample_period_s > 0:
            raise ValueError(f"power.sample_period_s must be > 0, got {self.sample_period_s!r}")

    @classmethod
    def from_mapping(cls, data: Optional[Mapping[str, Any]]) -> "PowerConfig":
        data = dict(data or {})
        unknown = set(data) - {"device_class", "meter", "total_rail", "current_unit", "sample_period_s",
                               "calibration"}
        if unknown:
            raise ValueError(f"unknown power config keys: {', '.join(sorted(unknown))}")
        calibration = {}
        for device_class, entry in dict(data.pop("calibration", {}) or {}).items():
            try:
                calibration[str(device_class)] = Calibration(float(entry.get("scale", 1.0)),
                                                             float(entry.get("offset_w", 0.0)))
            except (AttributeError, TypeError, ValueError) as exc:
                raise ValueError(f"power.calibration.{device_class}: {exc} (want scale and offset_w numbers)") \
                    from None
        if "sample_period_s" in data:
            data["sample_period_s"] = float(data["sample_period_s"])
        return cls(calibration=calibration, **{k: (v if k == "sample_period_s" else str(v)) for k, v in data.items()})

    def calibration_for(self, device_class: Optional[str] = None) -> Calibration:
        return self.calibration.get(device_class if device_class is not None else self.device_class, Calibration())


def load_power_config(path: str) -> PowerConfig:
    """The ``power`` section of the agent config file (.json, or .toml where tomllib/tomli is available)."""
    return PowerConfig.from_mapping(load_agent_config(path).get("power", {}))


def _as_config(config: Union[PowerConfig, Mapping[str, Any], None]) -> PowerConfig:
    return config if isinstance(config, PowerConfig) else PowerConfig.from_mapping(config)


def _probe(meter: PowerMeter, config: PowerConfig) -> PowerSensorInfo:
    rate, readable, message = 0.0, True, ""
    try:
        rate = measure_read_rate_hz(meter, max_rate_hz=1.0 / config.sample_period_s)
    except SensorError as exc:
        readable, message = False, str(exc)
    meter.sample_rate_hz = rate
    return PowerSensorInfo(name=meter.name, source=meter.source, rails=tuple(meter.rails),
                           total_rail=meter.total_rail, units=meter.units, sample_rate_hz=rate, readable=readable,
                           message=message)


def _present(root: Optional[str], config: PowerConfig) -> List[Tuple[str, Union[PowerMeter, SensorError]]]:
    """(family, meter or the error that says why it is present but unusable) for each family found."""
    families = (config.meter,) if config.meter and config.meter != "none" else METERS.names()
    if config.meter == "none":
        return []
    found: List[Tuple[str, Union[PowerMeter, SensorError]]] = []
    for family in families:
        try:
            found.append((family, METERS.load(family).for_board(root, config)))
        except SensorUnavailable as exc:
            if config.meter:  # asked for explicitly: say why it is not there
                found.append((family, exc))
        except SensorError as exc:  # present, but the first read failed (permissions...)
            found.append((family, exc))
        except AgentError as exc:  # a plug-in whose module does not import: say so
            found.append((family, SensorError(str(exc))))
    return found


def _family_name(family: str) -> str:
    """The name a family's meter reports (PowerSensorInfo.name), also when it could not be built."""
    try:
        return METERS.load(family).name
    except AgentError:
        return family


def detect_meters(root: Optional[str] = None,
                  config: Union[PowerConfig, Mapping[str, Any], None] = None) -> List[PowerSensorInfo]:
    """Every meter family present here, probed now (see the module docstring)."""
    return [info for _, info in _detect(root, _as_config(config))]


def select_meter(root: Optional[str] = None, config: Union[PowerConfig, Mapping[str, Any], None] = None
                 ) -> Tuple[PowerMeter, PowerSensorInfo]:
    """The meter to measure energy with, and its probe; a NullMeter with the reasons when none is readable."""
    found = _detect(root, _as_config(config))
    for meter, info in found:
        if info.readable and meter is not None:
            return meter, info
    null = NullMeter(_unavailable_reason(found))
    return null, PowerSensorInfo(name=null.name, source="", rails=(), total_rail="", units="", sample_rate_hz=0.0,
                                 readable=False, message=null.reason)


def _unavailable_reason(found: List[Tuple[Optional[PowerMeter], PowerSensorInfo]]) -> str:
    problems = [f"{info.name}: {info.message}" for _, info in found if info.message and info.name != "none"]
    return "; ".join(problems) if problems else NO_SENSOR


def _detect(root: Optional[str], config: PowerConfig) -> List[Tuple[Optional[PowerMeter], PowerSensorInfo]]:
    out: List[Tuple[Optional[PowerMeter], PowerSensorInfo]] = []
    for family, meter in _present(root, config):
        if isinstance(meter, SensorError):
            out.append((None, PowerSensorInfo(name=_family_name(family), source="", rails=(), total_rail="", units="",
                                              sample_rate_hz=0.0, readable=False, message=str(meter))))
        else:
            out.append((meter, _probe(meter, config)))
    if not out:
        reason = "power.meter is 'none' in the agent config" if config.meter == "none" else NO_SENSOR
        out.append((None, PowerSensorInfo(name="none", source="", rails=(), total_rail="", units="",
                                          sample_rate_hz=0.0, readable=False, message=reason)))
    return out
