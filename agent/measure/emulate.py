"""Emulation mode: answer Measure from a table of recorded latencies instead of running the model.

For dry runs and scale tests (`fleetnas-agent serve --emulate TABLE.csv --emulate-params res,w_0,... --emulate-latency
COL`). The host exports real sub-networks whose ONNX ``metadata_props`` carry ``fleetnas.config`` (canonical JSON);
we read that property with a protobuf wire walk (no onnx package on boards), look the configuration up in the table
by the ``--emulate-params`` columns, sleep for as long as the real measurement would have taken with the requested
timing, and return the table's latency marked ``emulated``. A model without the metadata, or a configuration missing
from the table, is a LOAD_FAILED result that says so.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

from fleetnas.agent.store.formats import WIRE_LEN, protobuf_fields
from fleetnas.agent.records import (EnergyResult, LatencyStats, MeasureJob, MeasureResult, Outcome, PhaseTimes,
                                    RuntimeConfigUsed, Stability, TimingConfig)

_ONNX_METADATA_PROPS = 14          # ModelProto.metadata_props: repeated StringStringEntryProto
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
CONFIG_PROPERTY = "fleetnas.config"
SUPERNET_PROPERTY = "fleetnas.supernet"


class EmulationError(ValueError):
    """The emulation table or its flags are wrong (the CLI prints this and exits 2)."""


def onnx_metadata(data: bytes) -> Dict[str, str]:
    """The ``metadata_props`` of a serialized ONNX ModelProto as a dict (ValueError when not protobuf)."""
    props: Dict[str, str] = {}
    for field, wire, value in protobuf_fields(memoryview(data)):
        if field == _ONNX_METADATA_PROPS and wire == WIRE_LEN:
            entry = {f: bytes(v).decode("utf-8", "replace") for f, w, v in protobuf_fields(value) if w == WIRE_LEN}
            props[entry.get(_ENTRY_KEY, "")] = entry.get(_ENTRY_VALUE, "")
    return props


def normalize_value(value: object) -> str:
    """One spelling per value, so the table's "3", "3.0" and the config's 3 match."""
    text = str(value).strip()
    if isinstance(value, bool) or text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


@dataclass(frozen=True)
class EmulationTable:
    path: Path
    params: Tuple[str, ...]
    latency_column: str
    energy_column: Optional[str]
    rows: Dict[Tuple[str, ...], Tuple[float, Optional[float]]]   # key -> (latency_ms, energy_mj)

    @classmethod
    def from_csv(cls, path: Path, params: Sequence[str], latency_column: str,
                 energy_column: Optional[str] = None) -> "EmulationTable":
        path = Path(path)
        params = tuple(p.strip() for p in params if p.strip())
        if not params:
            raise EmulationError("--emulate-params needs the table's configuration columns, e.g. res,w_0,d_0,k_0")
        try:
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                columns = reader.fieldnames or []
                wanted = params + (latency_column,) + ((energy_column,) if energy_column else ())
                missing = [c for c in wanted if c not in columns]
                if missing:
                    raise EmulationError(f"{path}: no column(s) {', '.join(missing)}; the table has "
                                         f"{', '.join(columns) or 'no header'}")
                rows: Dict[Tuple[str, ...], Tuple[float, Optional[float]]] = {}
                for line, row in enumerate(reader, start=2):
                    key = tuple(normalize_value(row[p]) for p in params)
                    try:
                        latency_ms = float(row[latency_column])
                        energy_mj = float(row[energy_column]) if energy_column else None
                    except ValueError:
                        raise EmulationError(f"{path}:{line}: {latency_column} must be a number, "
                                             f"got {row[latency_column]!r}") from None
                    if not latency_ms > 0 or math.isnan(latency_ms):
                        raise EmulationError(f"{path}:{line}: latency {latency_ms} must be > 0 ms")
                    rows.setdefault(key, (latency_ms, energy_mj))
        except OSError as exc:
            raise EmulationError(f"cannot read emulation table {path}: {exc.strerror}") from None
        if not rows:
            raise EmulationError(f"{path}: the emulation table has no rows")
        return cls(path, params, latency_column, energy_column, rows)

    def lookup(self, config: Dict[str, object]) -> Optional[Tuple[float, Optional[float]]]:
        missing = [p for p in self.params if p not in config]
        if missing:
            raise KeyError(f"the model's configuration has no {', '.join(missing)} (it has {', '.join(config)})")
        return self.rows.get(tuple(normalize_value(config[p]) for p in self.params))


def emulated_duration_s(latency_ms: float, timing: TimingConfig) -> Tuple[float, int, int]:
    """(seconds a real run would take, warm-up runs, runs per block) under ``timing``: the agent's own rules."""
    latency_s = latency_ms / 1e3
    warmup_runs = max(timing.warmup_runs, math.ceil(timing.warmup_s / latency_s))
    per_block = max(timing.min_runs_per_block, math.ceil(timing.min_block_s / latency_s))
    return latency_s * (warmup_runs + timing.blocks * per_block), warmup_runs, per_block


def _stats(latency_ms: float, n: int) -> LatencyStats:
    return LatencyStats(n=n, min_ms=latency_ms, median_ms=latency_ms, p90_ms=latency_ms, p99_ms=latency_ms,
                        mean_ms=latency_ms, std_ms=0.0, cv=0.0, max_ms=latency_ms)


def make_emulated_measure_fn(table: EmulationTable, time_scale: float = 1.0,
                             sleep: Callable[[float], None] = time.sleep):
    """A ``measure_fn`` for AgentService. ``time_scale`` < 1 shortens the sleeps (scale tests), 0 skips them."""
    if time_scale < 0:
        raise EmulationError(f"--emulate-time-scale must be >= 0, got {time_scale}")

    def measure(job: MeasureJob) -> MeasureResult:
        fmt, options, timing, energy = job.model_format, job.options, job.timing, job.energy
        started_ns = time.time_ns()
        if fmt != "onnx":
            return MeasureResult(Outcome.LOAD_FAILED, f"emulation reads the configuration from ONNX metadata; "
                                 f"got a {fmt} model", emulated=True)
        try:
            props = onnx_metadata(Path(job.model_path).read_bytes())
            config = json.loads(props[CONFIG_PROPERTY])
            found = table.lookup(config)
        except KeyError as exc:
            reason = (f"no {CONFIG_PROPERTY} in the model's metadata_props (export it with fleetnas)"
                      if exc.args and exc.args[0] == CONFIG_PROPERTY else str(exc.args[0] if exc.args else exc))
            return MeasureResult(Outcome.LOAD_FAILED, f"cannot emulate: {reason}", emulated=True)
        except (ValueError, OSError) as exc:
            return MeasureResult(Outcome.LOAD_FAILED, f"cannot emulate: {exc}", emulated=True)
        if found is None:
            return MeasureResult(Outcome.LOAD_FAILED, f"cannot emulate: configuration {json.dumps(config)} is not "
                                 f"in {table.path.name}", emulated=True)
        latency_ms, energy_mj = found
        duration_s, warmup_runs, per_block = emulated_duration_s(latency_ms, timing)
        duration_s = min(duration_s * time_scale, timing.timeout_s)
        if duration_s > 0:
            sleep(duration_s)
        steady_ms = latency_ms * per_block * timing.blocks
        block = _stats(latency_ms, per_block)
        used = RuntimeConfigUsed(runtime=job.runtime, runtime_version="emulated",
                                 execution_provider=options.execution_provider,
                                 provider_options=options.provider_options, intra_op_threads=options.threads,
                                 inter_op_threads=1, allow_spinning=options.allow_spinning,
                                 cpu_affinity=options.cpu_affinity,
                                 graph_optimization_level=options.graph_optimization_level, input_shapes=())
        note = f"emulated from {table.path.name} column {table.latency_column}"
        reason, energy_result = "", None
        if energy is not None and energy.enabled:
            if energy_mj is None:
                reason = "emulation table has no energy column (--emulate-energy)"
            else:
                power_w = energy_mj / latency_ms   # mJ per ms is W
                energy_result = EnergyResult(energy_mj, energy_mj, 0.0, power_w, power_w, power_w, 0, 0.0,
                                             steady_ms / 1e3, per_block * timing.blocks, "emulated", ())
        return MeasureResult(
            Outcome.OK, note, phases=PhaseTimes(0.0, latency_ms, latency_ms * warmup_runs, warmup_runs, steady_ms),
            overall=_stats(latency_ms, per_block * timing.blocks), blocks=(block,) * timing.blocks,
            block_median_cv=0.0, stability=Stability.STABLE, config=used, run_wall_ms=duration_s * 1e3,
            started_unix_ns=started_ns, energy=energy_result, energy_unavailable_reason=reason, emulated=True,
            extra={"emulation_table": str(table.path.name), SUPERNET_PROPERTY: props.get(SUPERNET_PROPERTY, "")},
        )

    return measure
