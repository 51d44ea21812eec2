"""NVIDIA discrete GPUs: NVML's total-energy counter (mJ since driver load), summed over the GPUs.

``pynvml`` comes from the ``nvidia-ml-py`` package and is imported only when this meter is built. The counter is
64-bit (never wraps in practice) but updates coarsely: a short window can read 0, which the integration reports
as too few samples rather than a zero energy. This is the GPU board only, not the host CPU.
"""
from __future__ import annotations

import importlib
from typing import Optional

from fleetnas.agent.power.base import (
    COUNTER, MeterSettings, PowerMeter, SensorGarbage, SensorPermissionDenied, SensorUnavailable, SensorVanished)

INSTALL_HINT = "pip install nvidia-ml-py (needs the NVIDIA driver's libnvidia-ml)"


class NvmlMeter(PowerMeter):
    name = "nvml"
    kind = COUNTER
    units = "mJ counter"
    update_period_s = 0.1
    max_power_w = 5000.0

    @classmethod
    def for_board(cls, root: Optional[str], settings: MeterSettings) -> "NvmlMeter":
        return cls()

    def __init__(self, module_name: str = "pynvml", gpu_indices: Optional[list] = None) -> None:
        try:
            self._nvml = importlib.import_module(module_name)
        except ImportError:
            raise SensorUnavailable(f"pynvml is not installed: {INSTALL_HINT}") from None
        try:
            self._nvml.nvmlInit()
            count = self._nvml.nvmlDeviceGetCount()
            indices = list(range(count)) if gpu_indices is None else list(gpu_indices)
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            names = [self._name(h, i) for h, i in zip(self._handles, indices)]
            for handle in self._handles:  # GPUs before Volta have no energy counter
                self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except self._nvml.NVMLError as exc:
            raise SensorUnavailable(f"NVML energy counter not available: {exc}") from None
        if not self._handles:
            raise SensorUnavailable("NVML found no GPU")
        super().__init__(source="nvmlDeviceGetTotalEnergyConsumption", rails=names, total_rail="+".join(names))

    def _name(self, handle, index: int) -> str:
        name = self._nvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else str(name)
        return f"gpu{index}:{name}"

    def _read(self):
        values = []
        for handle in self._handles:
            try:
                millijoules = self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except self._nvml.NVMLError as exc:
                if "permission" in str(exc).lower():
                    raise SensorPermissionDenied(f"NVML refused the energy counter: {exc}; run the agent as "
                                                 "a user allowed to query the GPU (root, or the video group)") from None
                raise SensorVanished(f"NVML stopped answering: {exc}") from None
            if not isinstance(millijoules, int) or millijoules < 0:
                raise SensorGarbage(f"NVML total energy {millijoules!r} is not a non-negative integer")
            values.append((millijoules * 1e-3, 0.0))
        return tuple(values)
