"""The host's side of the agent contract (fleetnas.agent.v1): typed records in, typed records out.

Together with ``client.py`` (the gRPC calls) this is the only host module that imports the stubs or anything under
``fleetnas.agent``. Everything else passes the records defined here:

- ``TimingConfig`` and ``RuntimeConfig``: how a model is measured, one shape from the command line to the request
  (``RuntimeConfig.to_request``, the only place a ``MeasureRequest`` is built);
- ``DeviceInfo`` (runtimes with the model formats they load, sensors, fingerprint), ``StoredModel``,
  ``UploadResult``, ``ModelListing``: what the agent tells about itself and its model store;
- ``MeasureResult``: one measurement as the agent reported it, with ``to_measurement`` building the run's
  ``Measurement`` record (the one place it is built from a response).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from google.protobuf.json_format import MessageToDict

from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import USABLE_OUTCOMES, Measurement

DEFAULT_AGENT_PORT = 50051   # what `fleetnas-agent serve` listens on unless told otherwise
_FORMAT_PREFIX = "MODEL_FORMAT_"


# ---------------------------------------------------------------------------------------------------- formats
def format_name(value: int) -> str:
    """``MODEL_FORMAT_ONNX`` -> ``"onnx"``: the names the exporter registry and the agent's runtimes use."""
    return pb.ModelFormat.Name(value)[len(_FORMAT_PREFIX):].lower()


def format_to_pb(name: str) -> int:
    try:
        return pb.ModelFormat.Value(_FORMAT_PREFIX + name.upper())
    except ValueError:
        known = [format_name(v) for v in pb.ModelFormat.values() if v]
        raise UsageError(f"the agent contract has no model format {name!r}; it knows {', '.join(known)}") from None


def message_to_dict(message) -> dict:
    """A contract message as plain JSON-able data (proto field names, every field), for journals and --json."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


# ---------------------------------------------------------------------------------------------------- requests
# The agent's own checks, applied before any call: (field, smallest allowed value, whether it is allowed itself)
_TIMING_BOUNDS = (("warmup_runs", 0, True), ("warmup_s", 0, True), ("blocks", 1, True),
                  ("min_runs_per_block", 1, True), ("min_block_s", 0, True), ("timeout_s", 0, False))


@dataclass(frozen=True)
class TimingConfig:
    """How one measurement is timed. None: the agent's default (10 warm-up runs / 2 s, 5 blocks of >= 20 runs and
    >= 1 s, 300 s timeout). A measurement costs about warm-up + blocks * max(min_runs_per_block runs, min_block_s)."""
    warmup_runs: Optional[int] = None
    warmup_s: Optional[float] = None
    blocks: Optional[int] = None
    min_runs_per_block: Optional[int] = None
    min_block_s: Optional[float] = None
    timeout_s: Optional[float] = None    # the agent kills the worker past it

    def __post_init__(self) -> None:
        for name, low, inclusive in _TIMING_BOUNDS:
            value = getattr(self, name)
            if value is not None and (value < low if inclusive else value <= low):
                raise UsageError(f"timing: {name} must be {'>=' if inclusive else '>'} {low}, got {value}")

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_pb(self) -> pb.TimingConfig:
        return pb.TimingConfig(**{k: v or 0 for k, v in asdict(self).items()})   # 0 on the wire: the default


# Short but methodical: every phase of the agent's protocol runs (warm-up, 3 blocks, stability gate).
QUICK_TIMING = TimingConfig(warmup_runs=5, warmup_s=0.1, blocks=3, min_runs_per_block=10, min_block_s=0.1,
                            timeout_s=120.0)


@dataclass(frozen=True)
class RuntimeConfig:
    """How every candidate of a run is measured; ``key`` is part of the measurement cache key and of run.json."""
    runtime: str = "onnxruntime"
    threads: int = 0                  # 0: the agent picks its fastest cluster's size
    execution_provider: str = ""      # onnxruntime EP or LiteRT delegate; "" = CPU
    energy: bool = False
    timing: TimingConfig = QUICK_TIMING

    def __post_init__(self) -> None:
        if not isinstance(self.timing, TimingConfig):   # a mapping or (name, value) pairs, e.g. from run.json
            object.__setattr__(self, "timing", TimingConfig(**dict(self.timing)))

    @property
    def key(self) -> str:
        return json.dumps({"runtime": self.runtime, "threads": self.threads, "ep": self.execution_provider,
                           "energy": self.energy, "timing": self.timing.as_dict()}, sort_keys=True)

    def to_request(self, model_sha256: str, *, request_id: str = "", replay_only: bool = False) -> pb.MeasureRequest:
        return pb.MeasureRequest(
            model_sha256=model_sha256, runtime=self.runtime,
            options=pb.RuntimeOptions(threads=self.threads, execution_provider=self.execution_provider),
            timing=self.timing.to_pb(), energy=pb.EnergyConfig(enabled=self.energy), request_id=request_id,
            replay_only=replay_only)


# ---------------------------------------------------------------------------------------------------- device info
@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    available: bool
    version: str
    execution_providers: Tuple[str, ...]
    formats: Tuple[str, ...]          # the model formats it loads, e.g. ("onnx",)
    message: str                      # why unavailable, with the install hint

    def describe(self) -> str:
        return f"{self.name} ({', '.join(self.formats) or 'no formats'})"


@dataclass(frozen=True)
class PowerSensor:
    name: str
    readable: bool
    message: str


@dataclass(frozen=True)
class Fingerprint:
    cpu_model: str
    machine: str
    cpu_count_logical: int
    ram_bytes: int
    board_model: str
    os_name: str


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    agent_version: str
    fingerprint: Fingerprint
    fingerprint_sha256: str
    runtimes: Tuple[RuntimeInfo, ...]
    power_sensors: Tuple[PowerSensor, ...]
    temperatures_c: Tuple[float, ...]
    state_captured_unix_ns: int
    clock_unix_ns: int
    queue_length: int
    measurements_done: int
    emulated: bool

    @classmethod
    def from_pb(cls, info: pb.DeviceInfo) -> "DeviceInfo":
        fp = info.fingerprint
        return cls(
            device_id=info.device_id, agent_version=info.agent_version,
            fingerprint=Fingerprint(fp.cpu_model, fp.machine, fp.cpu_count_logical, fp.ram_bytes, fp.board_model,
                                    fp.os_name),
            fingerprint_sha256=info.fingerprint_sha256,
            runtimes=tuple(RuntimeInfo(r.name, r.available, r.version, tuple(r.execution_providers),
                                       tuple(format_name(f) for f in r.formats), r.message) for r in info.runtimes),
            power_sensors=tuple(PowerSensor(s.name, s.readable, s.message) for s in info.power_sensors),
            temperatures_c=tuple(t.temp_c for t in info.state.thermal),
            state_captured_unix_ns=info.state.captured_unix_ns, clock_unix_ns=info.clock_unix_ns,
            queue_length=info.queue_length, measurements_done=info.measurements_done, emulated=info.emulated)

    @property
    def cache_identity(self) -> str:
        """The board's key in the measurement cache: emulating agents never share entries with real ones."""
        return self.fingerprint_sha256 + ("/emulated" if self.emulated else "")

    @property
    def available_runtimes(self) -> Tuple[RuntimeInfo, ...]:
        return tuple(r for r in self.runtimes if r.available)

    def runtime(self, name: str) -> Optional[RuntimeInfo]:
        return next((r for r in self.runtimes if r.name == name), None)


# ---------------------------------------------------------------------------------------------------- model store
@dataclass(frozen=True)
class StoredModel:
    sha256: str
    size_bytes: int
    format: str
    name: str

    @classmethod
    def from_pb(cls, model: pb.ModelInfo) -> "StoredModel":
        return cls(model.sha256, model.size_bytes, format_name(model.format), model.name)


@dataclass(frozen=True)
class UploadResult:
    model: StoredModel
    already_present: bool
    evicted_sha256: Tuple[str, ...]   # models the agent dropped (least recently used) to make room

    @classmethod
    def from_response(cls, r: pb.UploadModelResponse) -> "UploadResult":
        return cls(StoredModel.from_pb(r.model), r.already_present, tuple(r.evicted_sha256))


@dataclass(frozen=True)
class ModelListing:
    models: Tuple[StoredModel, ...]
    used_bytes: int
    quota_bytes: int

    @classmethod
    def from_response(cls, r: pb.ListModelsResponse) -> "ModelListing":
        return cls(tuple(StoredModel.from_pb(m) for m in r.models), r.store.used_bytes, r.store.quota_bytes)


# ---------------------------------------------------------------------------------------------------- measurement
@dataclass(frozen=True)
class LatencyStats:
    n: int
    min_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    cv: float          # per-inference spread (std / mean); the stability verdict uses the block medians' CV
    max_ms: float

    @classmethod
    def from_pb(cls, s: pb.LatencyStats) -> "LatencyStats":
        return cls(**{f.name: getattr(s, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class PhaseTimes:
    load_ms: float
    first_inference_ms: float
    warmup_ms: float
    warmup_runs: int
    steady_ms: float


@dataclass(frozen=True)
class RuntimeUsed:
    """What the agent actually ran with (threads and CPUs it picked when told 0 / nothing)."""
    runtime: str
    runtime_version: str
    execution_provider: str
    intra_op_threads: int
    cpu_affinity: Tuple[int, ...]
    allow_spinning: bool


@dataclass(frozen=True)
class EnergyStats:
    energy_mj: float            # per inference
    dynamic_energy_mj: float    # per inference, idle power subtracted
    mean_power_w: float
    window_s: float
    sensor: str


@dataclass(frozen=True)
class MeasureResult:
    """One Measure answer. A model that fails on the board is a result (``outcome`` != "OK"), not an error."""
    outcome: str                    # "OK", "UNSTABLE", "LOAD_FAILED", "TIMEOUT", "OOM", "CRASHED", "RUN_FAILED"
    message: str
    request_id: str
    model_sha256: str
    device_id: str
    emulated: bool
    overall: Optional[LatencyStats]  # None when nothing was timed
    blocks: Tuple[LatencyStats, ...]
    block_median_cv: float          # the stability measure: CV of the blocks' medians
    stability: str                  # "STABLE" | "NOISY" | "UNSTABLE"
    attempts: int                   # 2 when the stability gate measured again
    phases: PhaseTimes
    config: RuntimeUsed
    peak_rss_bytes: int
    queue_wait_ms: float
    run_wall_ms: float
    started_unix_ns: int
    state_before_unix_ns: int
    state_after_unix_ns: int
    energy: Optional[EnergyStats]   # None: not measured (see energy_unavailable_reason)
    energy_unavailable_reason: str
    response: Dict[str, Any]        # the whole answer as JSON data (every statistic and its provenance)
    replayed: bool = False          # the agent answered from its memory of request_id (measured for an earlier call)

    @classmethod
    def from_response(cls, r: pb.MeasureResponse) -> "MeasureResult":
        p, c = r.phases, r.config
        energy = None
        if r.HasField("energy"):
            e = r.energy
            energy = EnergyStats(e.energy_mj, e.dynamic_energy_mj, e.mean_power_w, e.window_s, e.sensor)
        return cls(
            outcome=pb.Outcome.Name(r.outcome).replace("OUTCOME_", ""), message=r.message, request_id=r.request_id,
            model_sha256=r.model_sha256, device_id=r.device_id, emulated=r.emulated,
            overall=LatencyStats.from_pb(r.overall) if r.HasField("overall") else None,
            blocks=tuple(LatencyStats.from_pb(b) for b in r.blocks), block_median_cv=r.block_median_cv,
            stability=pb.Stability.Name(r.stability).replace("STABILITY_", ""), attempts=r.attempts,
            phases=PhaseTimes(p.load_ms, p.first_inference_ms, p.warmup_ms, p.warmup_runs, p.steady_ms),
            config=RuntimeUsed(c.runtime, c.runtime_version, c.execution_provider, c.intra_op_threads,
                               tuple(c.cpu_affinity), c.allow_spinning),
            peak_rss_bytes=r.peak_rss_bytes, queue_wait_ms=r.queue_wait_ms, run_wall_ms=r.run_wall_ms,
            started_unix_ns=r.started_unix_ns, state_before_unix_ns=r.state_before.captured_unix_ns,
            state_after_unix_ns=r.state_after.captured_unix_ns, energy=energy,
            energy_unavailable_reason=r.energy_unavailable_reason, response=message_to_dict(r), replayed=r.replayed)

    @property
    def usable(self) -> bool:
        return self.outcome in USABLE_OUTCOMES and self.overall is not None

    def to_measurement(self, *, device_fingerprint: str, model_sha256: str, runtime_key: str, device_class: str,
                       device_name: str, config_key: str) -> Measurement:
        """The run's record of this result on ``device_name`` (journal and cache payload: the whole response)."""
        return Measurement(
            device_fingerprint=device_fingerprint, model_sha256=model_sha256, runtime_key=runtime_key,
            device_class=device_class, device_name=device_name, device_id=self.device_id, config_key=config_key,
            outcome=self.outcome, latency_ms=self.overall.median_ms if self.usable else None,
            energy_mj=self.energy.energy_mj if self.energy is not None else None, emulated=self.emulated,
            source="measured", recorded_unix_ns=time.time_ns(), response=dict(self.response, device_name=device_name),
            replayed=self.replayed)


def error_measurement(*, device_fingerprint: str, model_sha256: str, runtime_key: str, device_class: str,
                      device_name: str, config_key: str, message: str, tried: Tuple[str, ...]) -> Measurement:
    """The record of a model the fleet could not measure at all (outcome "ERROR"): data, not an exception."""
    return Measurement(
        device_fingerprint=device_fingerprint, model_sha256=model_sha256, runtime_key=runtime_key,
        device_class=device_class, device_name=device_name, device_id="", config_key=config_key, outcome="ERROR",
        latency_ms=None, energy_mj=None, emulated=False, source="measured", recorded_unix_ns=time.time_ns(),
        response={"message": message, "tried": list(tried)})


# ---------------------------------------------------------------------------------------------------- test helpers
def write_reference_model(directory: Union[str, Path], model_format: str = "onnx", **kwargs: Any) -> Path:
    """The agent's reference model (a seeded MLP chain) written into ``directory``; what `selftest` measures."""
    # Lazy: it builds models with numpy/onnx (the pytest plugin must stay light), and its module may move.
    from fleetnas.agent.measure.reference_model import write_reference_model as write
    return write(Path(directory), model_format, **kwargs)
