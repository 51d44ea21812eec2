"""GetDeviceInfo: the board's fingerprint (collected once at start), its runtimes and sensors, and live state."""
from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import List, Optional

from fleetnas.agent import __version__, runtimes
from fleetnas.agent.board import device_state
from fleetnas.agent.board.fingerprint import device_id, fingerprint
from fleetnas.agent.power.detect import detect_meters
from fleetnas.agent.records import Fingerprint
from fleetnas.agent.rpc import convert
from fleetnas.agent.v1 import agent_pb2 as pb

log = logging.getLogger("fleetnas.agent")


def detect_sensors() -> List[pb.PowerSensorInfo]:
    """Power sensors found on this board, each probed now."""
    found = []
    for meter in detect_meters():
        found.append(pb.PowerSensorInfo(
            name=str(getattr(meter, "name", "")), source=str(getattr(meter, "source", "")),
            rails=list(getattr(meter, "rails", ())), total_rail=str(getattr(meter, "total_rail", "")),
            units=str(getattr(meter, "units", "")), sample_rate_hz=float(getattr(meter, "sample_rate_hz", 0.0)),
            readable=bool(getattr(meter, "readable", False)), message=str(getattr(meter, "message", ""))))
    return found


def fingerprint_to_pb(fp: Fingerprint) -> pb.Fingerprint:
    msg = pb.Fingerprint(
        cpu_model=fp.cpu_model, machine=fp.machine, cpu_count_logical=fp.cpu_count,
        cpu_count_physical=0, ram_bytes=fp.ram_bytes, os_name=fp.os_name, kernel=fp.kernel,
        python_version=fp.python_version, board_model=fp.board_model, thermal_zones=list(fp.thermal_zones),
        governors=list(fp.governors))
    for c in fp.clusters:
        msg.clusters.add(cpus=list(c.cpus), max_khz=c.max_khz)
    return msg


class DeviceInfoSource:
    """Collects the static part once; ``device_info()`` adds live state, queue and store figures per call.

    The static part (runtimes probed in a short-lived child, so the agent never maps their libraries; power sensors
    with their read rates measured) is collected on a background thread: serving starts without waiting for it.
    """

    def __init__(self, service, state_dir: Path, emulated: bool = False) -> None:
        self.service = service
        self.emulated = emulated
        self.state_dir = Path(state_dir)
        self.device_id = device_id(self.state_dir)
        self._static: Optional[tuple] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._collect, name="device-info", daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        try:
            fp = fingerprint(self.state_dir, runtimes.runtime_infos(isolated=True), __version__)
            self._static = (fp, detect_sensors())
        except BaseException as exc:  # surfaced to the caller of device_info()
            self._error = exc

    @property
    def fingerprint(self) -> Fingerprint:
        return self._static_part()[0]

    @property
    def sensors(self) -> List[pb.PowerSensorInfo]:
        return self._static_part()[1]

    def _static_part(self) -> tuple:
        self._thread.join()
        if self._static is None:
            raise RuntimeError(f"collecting the device fingerprint failed: {self._error!r}")
        return self._static

    def device_info(self) -> pb.DeviceInfo:
        fp = self.fingerprint
        info = pb.DeviceInfo(device_id=fp.device_id, agent_version=__version__, fingerprint=fingerprint_to_pb(fp),
                             fingerprint_sha256=fp.fingerprint_sha256, power_sensors=self.sensors,
                             state=convert.state_to_pb(device_state.snapshot()), clock_unix_ns=time.time_ns(),
                             emulated=self.emulated)
        for r in fp.runtimes:
            info.runtimes.add(name=r.name, available=r.available, version=r.version,
                              execution_providers=list(r.providers), message=r.message,
                              formats=[convert.FORMAT_TO_PB[f] for f in runtimes.get(r.name).model_formats])
        if self.service is not None:
            q = self.service.queue_stats()
            info.queue_length, info.measurements_done = q.queue_length, q.measurements_done
            store = self.service.store
            info.store.CopyFrom(pb.StoreStats(models=len(store.list()), used_bytes=store.used_bytes(),
                                              quota_bytes=store.quota_bytes))
        return info


def format_info(info: pb.DeviceInfo) -> str:
    fp = info.fingerprint
    lines = [f"fleetnas-agent {info.agent_version}  device {info.device_id}  fingerprint {info.fingerprint_sha256[:16]}",
             f"cpu      {fp.cpu_model} ({fp.machine}, {fp.cpu_count_logical} CPUs; clusters "
             + ", ".join(f"{list(c.cpus)}@{c.max_khz // 1000} MHz" if c.max_khz else f"{list(c.cpus)}"
                         for c in fp.clusters) + ")",
             f"memory   {fp.ram_bytes / 2**30:.1f} GiB   os {fp.os_name}, kernel {fp.kernel}, Python {fp.python_version}"]
    if fp.board_model:
        lines.append(f"board    {fp.board_model}")
    for r in info.runtimes:
        lines.append(f"runtime  {r.name}: " + (f"{r.version} [{', '.join(r.execution_providers)}]" if r.available
                                                else f"not available ({r.message})"))
    if not info.power_sensors:
        lines.append("energy   no power sensor found: energy is reported as unavailable")
    for s in info.power_sensors:
        if s.name == "none":  # the detector's explicit "nothing here", with the reason
            lines.append(f"energy   unavailable: {s.message}")
            continue
        lines.append(f"sensor   {s.name} at {s.source}: rails {', '.join(s.rails) or '-'} (total {s.total_rail or '-'}),"
                     f" {s.units}, {s.sample_rate_hz:.0f} Hz, " + ("readable" if s.readable else f"NOT readable: {s.message}"))
    temps = ", ".join(f"{t.type or t.zone} {t.temp_c:.1f} °C" for t in info.state.thermal)
    lines.append(f"thermal  {temps or 'no thermal zones readable'}")
    govs = ", ".join(f"{p.policy} {p.governor} {p.cur_khz // 1000} MHz" for p in info.state.cpu_policies)
    lines.append(f"cpufreq  {govs or 'no cpufreq policies exposed'}")
    return "\n".join(lines)


def max_temp_c(state: pb.DeviceState) -> Optional[float]:
    return None if math.isnan(state.max_temp_c) else state.max_temp_c
