"""The one place where agent records become fleetnas.agent.v1 messages and back (requests).

Every numeric field of every request is checked here against ``REQUEST_BOUNDS`` before anything else reads it:
finite and within the documented range, else InvalidRequest (INVALID_ARGUMENT) naming the field. A proto3 zero still
means "the agent's default". A measurement's run time is further capped by the agent's own ceiling
(AgentService.max_measure_s), which no request can lift.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Tuple, Union

from fleetnas.agent.errors import InvalidRequest
from fleetnas.agent.records import (DeviceState, EnergyConfig, EnergyResult, LatencyStats, MeasureResult,
                                    PhaseTimes, RuntimeConfigUsed, RuntimeOptions, TimingConfig)
from fleetnas.agent.store.formats import FORMATS
from fleetnas.agent.store.model_store import StoredModel
from fleetnas.agent.v1 import agent_pb2 as pb

FORMAT_TO_PB = {name: pb.ModelFormat.Value(f.proto_enum) for name, f in FORMATS.items()}
FORMAT_TO_PB[""] = pb.MODEL_FORMAT_UNSPECIFIED
FORMAT_FROM_PB = {v: k for k, v in FORMAT_TO_PB.items()}
_DEFAULT_TIMING = TimingConfig()

# (low, high) inclusive, per request field; 0 is always allowed where it means "the agent's default".
REQUEST_BOUNDS: Dict[str, Tuple[float, float]] = {
    "header.size_bytes": (1, 2**40),
    "options.threads": (0, 256),
    "options.cpu_affinity": (0, 4095),
    "timing.warmup_runs": (0, 100_000),
    "timing.warmup_s": (0.0, 600.0),
    "timing.blocks": (0, 1_000),
    "timing.min_runs_per_block": (0, 1_000_000),
    "timing.min_block_s": (0.0, 600.0),
    "timing.timeout_s": (0.0, 86_400.0),
    "energy.min_window_s": (0.0, 3_600.0),
    "energy.idle_s": (0.0, 600.0),
}
MAX_AFFINITY_CPUS = 4096


def check_field(name: str, value: Union[int, float]) -> None:
    """InvalidRequest naming ``name`` unless ``value`` is finite and within REQUEST_BOUNDS[name]."""
    low, high = REQUEST_BOUNDS[name]
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidRequest(f"{name} must be a finite number in [{low}, {high}], got {value!r}")


def _check_all(prefix: str, msg, names: Iterable[str]) -> None:
    for name in names:
        check_field(f"{prefix}.{name}", getattr(msg, name))


def upload_header_from_pb(msg: pb.UploadHeader) -> Tuple[str, int, str, str]:
    """(sha256, size_bytes, format name, name) of an upload's first message."""
    if msg.size_bytes <= 0:
        raise InvalidRequest(f"header.size_bytes must be > 0 in the upload header, got {msg.size_bytes}")
    check_field("header.size_bytes", msg.size_bytes)
    if msg.format not in FORMAT_FROM_PB:
        raise InvalidRequest(f"header.format {msg.format} is not a known ModelFormat value")
    return msg.sha256, msg.size_bytes, FORMAT_FROM_PB[msg.format], msg.name


# ---------------------------------------------------------------- requests
def options_from_pb(msg: pb.RuntimeOptions) -> RuntimeOptions:
    check_field("options.threads", msg.threads)
    if len(msg.cpu_affinity) > MAX_AFFINITY_CPUS:
        raise InvalidRequest(f"options.cpu_affinity lists {len(msg.cpu_affinity)} CPUs; at most {MAX_AFFINITY_CPUS}")
    for cpu in msg.cpu_affinity:
        check_field("options.cpu_affinity", cpu)
    return RuntimeOptions(
        threads=msg.threads, execution_provider=msg.execution_provider,
        provider_options=tuple(sorted(msg.provider_options.items())), allow_spinning=msg.allow_spinning,
        cpu_affinity=tuple(msg.cpu_affinity), graph_optimization_level=msg.graph_optimization_level)


def timing_from_pb(msg: pb.TimingConfig) -> TimingConfig:
    """0 in a field means "the agent's default" (proto3 has no presence for scalars); InvalidRequest when out of
    range. The worker receives this same TimingConfig inside its MeasureJob."""
    d = _DEFAULT_TIMING
    _check_all("timing", msg, ("warmup_runs", "warmup_s", "blocks", "min_runs_per_block", "min_block_s", "timeout_s"))
    try:
        return _timing(msg, d)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def _timing(msg: pb.TimingConfig, d: TimingConfig) -> TimingConfig:
    return TimingConfig(
        warmup_runs=msg.warmup_runs or d.warmup_runs, warmup_s=msg.warmup_s or d.warmup_s,
        blocks=msg.blocks or d.blocks, min_runs_per_block=msg.min_runs_per_block or d.min_runs_per_block,
        min_block_s=msg.min_block_s or d.min_block_s, timeout_s=msg.timeout_s or d.timeout_s,
        input_seed=msg.input_seed)


def energy_from_pb(msg: pb.EnergyConfig) -> Optional[EnergyConfig]:
    _check_all("energy", msg, ("min_window_s", "idle_s"))
    if not msg.enabled:
        return None
    return EnergyConfig(enabled=True, min_window_s=msg.min_window_s, idle_s=msg.idle_s or EnergyConfig().idle_s)


# ---------------------------------------------------------------- results
def model_to_pb(model: StoredModel) -> pb.ModelInfo:
    return pb.ModelInfo(sha256=model.sha256, size_bytes=model.size_bytes, format=FORMAT_TO_PB[model.format],
                        name=model.name, stored_unix_s=model.stored_unix_s, last_used_unix_s=model.last_used_unix_s)


def stats_to_pb(s: LatencyStats) -> pb.LatencyStats:
    return pb.LatencyStats(n=s.n, min_ms=s.min_ms, median_ms=s.median_ms, p90_ms=s.p90_ms, p99_ms=s.p99_ms,
                           mean_ms=s.mean_ms, std_ms=s.std_ms, cv=s.cv, max_ms=s.max_ms)


def state_to_pb(s: DeviceState) -> pb.DeviceState:
    msg = pb.DeviceState(captured_unix_ns=s.captured_unix_ns, max_temp_c=s.max_temp_c)
    for t in s.thermal:
        msg.thermal.add(zone=t.zone, type=t.type, temp_c=t.temp_c)
    for p in s.cpu_policies:
        msg.cpu_policies.add(policy=p.policy, cpus=list(p.cpus), governor=p.governor, cur_khz=p.cur_khz,
                             min_khz=p.min_khz, max_khz=p.max_khz, cpuinfo_max_khz=p.cpuinfo_max_khz)
    msg.throttle.update(dict(s.throttle))
    return msg


def phases_to_pb(p: PhaseTimes) -> pb.PhaseTimes:
    return pb.PhaseTimes(load_ms=p.load_ms, first_inference_ms=p.first_inference_ms, warmup_ms=p.warmup_ms,
                         warmup_runs=p.warmup_runs, steady_ms=p.steady_ms)


def config_to_pb(c: RuntimeConfigUsed) -> pb.RuntimeConfigUsed:
    msg = pb.RuntimeConfigUsed(
        runtime=c.runtime, runtime_version=c.runtime_version, execution_provider=c.execution_provider,
        intra_op_threads=c.intra_op_threads, inter_op_threads=c.inter_op_threads, allow_spinning=c.allow_spinning,
        cpu_affinity=list(c.cpu_affinity), graph_optimization_level=c.graph_optimization_level,
        input_shapes=list(c.input_shapes))
    msg.provider_options.update(dict(c.provider_options))
    return msg


def energy_to_pb(e: EnergyResult) -> pb.EnergyResult:
    return pb.EnergyResult(
        energy_mj=e.energy_mj, dynamic_energy_mj=e.dynamic_energy_mj, idle_power_w=e.idle_power_w,
        mean_power_w=e.mean_power_w, min_power_w=e.min_power_w, max_power_w=e.max_power_w, samples=e.samples,
        sample_rate_hz=e.sample_rate_hz, window_s=e.window_s, inferences=e.inferences, sensor=e.sensor,
        rails=list(e.rails), calibration_scale=e.calibration_scale, calibration_offset_w=e.calibration_offset_w)


def result_to_pb(r: MeasureResult, *, request_id: str, model_sha256: str, device_id: str,
                 agent_version: str) -> pb.MeasureResponse:
    msg = pb.MeasureResponse(
        outcome=pb.Outcome.Value(f"OUTCOME_{r.outcome.value}"), message=r.message, crash_signal=r.crash_signal,
        request_id=request_id, model_sha256=model_sha256, device_id=device_id, agent_version=agent_version,
        attempts=r.attempts, peak_rss_bytes=r.peak_rss_bytes, queue_wait_ms=r.queue_wait_ms,
        run_wall_ms=r.run_wall_ms, started_unix_ns=r.started_unix_ns,
        energy_unavailable_reason=r.energy_unavailable_reason, emulated=r.emulated, drift_suspect=r.drift_suspect,
        replayed=r.replayed)
    if not math.isnan(r.block_median_cv):
        msg.block_median_cv = r.block_median_cv
    if r.stability is not None:
        msg.stability = pb.Stability.Value(f"STABILITY_{r.stability.value}")
    if r.phases is not None:
        msg.phases.CopyFrom(phases_to_pb(r.phases))
    if r.overall is not None:
        msg.overall.CopyFrom(stats_to_pb(r.overall))
    msg.blocks.extend(stats_to_pb(b) for b in r.blocks)
    if r.state_before is not None:
        msg.state_before.CopyFrom(state_to_pb(r.state_before))
    if r.state_after is not None:
        msg.state_after.CopyFrom(state_to_pb(r.state_after))
    if r.config is not None:
        msg.config.CopyFrom(config_to_pb(r.config))
    if r.energy is not None:
        msg.energy.CopyFrom(energy_to_pb(r.energy))
    return msg
