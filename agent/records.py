"""The agent's domain records: plain frozen dataclasses, no grpc, no protobuf.

They mirror the fleetnas.agent.v1 messages; fleetnas.agent.rpc.convert is the one place that maps between the two.
Units are in the names. ``None`` means "not measured" (never 0).
"""
from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple


class Outcome(enum.Enum):
    OK = "OK"
    LOAD_FAILED = "LOAD_FAILED"
    TIMEOUT = "TIMEOUT"
    OOM = "OOM"
    CRASHED = "CRASHED"
    UNSTABLE = "UNSTABLE"
    RUN_FAILED = "RUN_FAILED"


class Stability(enum.Enum):
    STABLE = "STABLE"      # CV of block medians <= 3 %
    NOISY = "NOISY"        # 3-10 %: accepted, flagged
    UNSTABLE = "UNSTABLE"  # > 10 %, or the board throttled during the run


@dataclass(frozen=True)
class RuntimeOptions:
    threads: int = 0                      # 0: size of the fastest CPU cluster (reported back)
    execution_provider: str = ""          # "" = CPU default
    provider_options: Tuple[Tuple[str, str], ...] = ()
    allow_spinning: bool = False
    cpu_affinity: Tuple[int, ...] = ()    # empty: pin to the fastest cluster
    graph_optimization_level: str = ""    # onnxruntime only; "" = all


@dataclass(frozen=True)
class TimingConfig:
    """How one measurement is run: see ../shared/guides/measurement.md for where the defaults come from."""
    warmup_runs: int = 10
    warmup_s: float = 2.0
    blocks: int = 5
    min_runs_per_block: int = 20
    min_block_s: float = 1.0
    timeout_s: float = 300.0
    input_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("warmup_runs", "blocks", "min_runs_per_block"):
            if getattr(self, name) < (1 if name != "warmup_runs" else 0):
                raise ValueError(f"TimingConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_s", "min_block_s", "timeout_s"):  # NaN passes every comparison: refuse it first
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"TimingConfig.{name} must be a finite number, got {getattr(self, name)}")
        for name in ("warmup_s", "min_block_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"TimingConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise ValueError(f"TimingConfig.timeout_s must be > 0, got {self.timeout_s}")


@dataclass(frozen=True)
class EnergyConfig:
    enabled: bool = False
    min_window_s: float = 0.0   # 0 = the sensor's own minimum
    idle_s: float = 5.0


@dataclass(frozen=True)
class MeasureJob:
    """One measurement, passed whole from the service through hygiene and the worker into the worker process (or
    emulation): which stored model, in which format, on which runtime, configured and timed how, with or without
    energy. It costs 1 + warmup + blocks * runs_per_block inferences (plus the energy window when asked)."""
    model_path: Path
    model_format: str                       # a name in fleetnas.agent.store.formats.FORMATS
    runtime: str                            # a name in the runtime registry (fleetnas.agent.runtimes)
    options: RuntimeOptions = RuntimeOptions()
    timing: TimingConfig = TimingConfig()
    energy: Optional[EnergyConfig] = None   # None or disabled: latency only

    def to_json(self) -> Dict[str, Any]:
        """Plain JSON types, for the worker process' stdin."""
        return {**asdict(self), "model_path": str(self.model_path)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "MeasureJob":
        def tuples(d: Mapping[str, Any]) -> Dict[str, Any]:  # JSON turned the tuples into lists
            return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                    for k, v in d.items()}
        return cls(Path(data["model_path"]), data["model_format"], data["runtime"],
                   RuntimeOptions(**tuples(data["options"])), TimingConfig(**data["timing"]),
                   EnergyConfig(**data["energy"]) if data.get("energy") else None)


@dataclass(frozen=True)
class LatencyStats:
    n: int
    min_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    max_ms: float


@dataclass(frozen=True)
class PhaseTimes:
    load_ms: float
    first_inference_ms: float
    warmup_ms: float
    warmup_runs: int
    steady_ms: float


@dataclass(frozen=True)
class ThermalReading:
    zone: str
    type: str
    temp_c: float


@dataclass(frozen=True)
class CpuPolicyState:
    policy: str
    cpus: Tuple[int, ...]
    governor: str
    cur_khz: int
    min_khz: int
    max_khz: int
    cpuinfo_max_khz: int


@dataclass(frozen=True)
class DeviceState:
    captured_unix_ns: int
    thermal: Tuple[ThermalReading, ...] = ()
    cpu_policies: Tuple[CpuPolicyState, ...] = ()
    throttle: Tuple[Tuple[str, str], ...] = ()

    @property
    def max_temp_c(self) -> float:
        temps = [t.temp_c for t in self.thermal]
        return max(temps) if temps else float("nan")


@dataclass(frozen=True)
class RuntimeConfigUsed:
    """Everything a user needs to reproduce a number outside fleetnas."""
    runtime: str
    runtime_version: str
    execution_provider: str
    provider_options: Tuple[Tuple[str, str], ...]
    intra_op_threads: int
    inter_op_threads: int
    allow_spinning: bool
    cpu_affinity: Tuple[int, ...]
    graph_optimization_level: str
    input_shapes: Tuple[str, ...]


@dataclass(frozen=True)
class EnergyResult:
    energy_mj: float
    dynamic_energy_mj: float
    idle_power_w: float
    mean_power_w: float
    min_power_w: float
    max_power_w: float
    samples: int
    sample_rate_hz: float
    window_s: float
    inferences: int
    sensor: str
    rails: Tuple[str, ...]
    calibration_scale: float = 1.0
    calibration_offset_w: float = 0.0


@dataclass(frozen=True)
class MeasureResult:
    """One measurement. A failed run is a result with a typed outcome, not an exception."""
    outcome: Outcome
    message: str = ""
    crash_signal: int = 0
    phases: Optional[PhaseTimes] = None
    overall: Optional[LatencyStats] = None
    blocks: Tuple[LatencyStats, ...] = ()
    block_median_cv: float = float("nan")
    stability: Optional[Stability] = None
    attempts: int = 1
    peak_rss_bytes: int = 0
    state_before: Optional[DeviceState] = None
    state_after: Optional[DeviceState] = None
    config: Optional[RuntimeConfigUsed] = None
    queue_wait_ms: float = 0.0
    run_wall_ms: float = 0.0
    started_unix_ns: int = 0
    energy: Optional[EnergyResult] = None
    energy_unavailable_reason: str = ""
    emulated: bool = False
    drift_suspect: bool = False
    extra: Dict[str, str] = field(default_factory=dict)
    replayed: bool = False          # answered from memory of its request_id (measured for an earlier call)


@dataclass(frozen=True)
class RuntimeInfo:
    """One inference runtime as this board sees it; ``message`` says why it is unavailable (with the install hint)."""
    name: str
    available: bool
    version: str = ""
    providers: Tuple[str, ...] = ()   # onnxruntime execution providers / LiteRT delegates
    message: str = ""


@dataclass(frozen=True)
class CpuCluster:
    """CPUs sharing one cpuinfo_max_freq (big.LITTLE boards have two or three); max_khz 0 = unknown."""
    cpus: Tuple[int, ...]
    max_khz: int


@dataclass(frozen=True)
class Fingerprint:
    """What a measured number depends on. ``fingerprint_sha256`` covers the stable fields only (not temperatures,
    current frequencies or the device id), so two identical boards with identical software share it."""
    device_id: str
    fingerprint_sha256: str
    cpu_model: str
    cpu_count: int
    clusters: Tuple[CpuCluster, ...]
    machine: str
    ram_bytes: int
    os_name: str
    kernel: str
    python_version: str
    board_model: str
    thermal_zones: Tuple[str, ...]
    governors: Tuple[str, ...]
    runtimes: Tuple[RuntimeInfo, ...]
    agent_version: str = ""


@dataclass(frozen=True)
class PowerSensorInfo:
    """One power meter found at start-up (fleetnas.agent.power.detect), as listed by `fleetnas-agent info`."""
    name: str                       # meter family: "rapl", "jetson-ina", "rpi5-pmic", "none", ...
    source: str                     # sysfs path or command it reads
    rails: Tuple[str, ...]
    total_rail: str                 # the rail(s) whose power is the board's total ("+" joins disjoint rails)
    units: str
    sample_rate_hz: float           # measured at start-up; 0 when unreadable
    readable: bool
    message: str = ""               # why not readable and how to fix it
