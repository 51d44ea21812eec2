"""The Runtime protocol every inference runtime implements, and the runtime-independent input maker.

A Runtime's own package is imported lazily (``fleetnas.agent.runtimes.get``): ``info()`` never raises, ``load()``
runs in the worker process only. ``load`` returns a LoadedModel whose ``bind(feeds)`` returns a zero-argument callable: the timed loop
calls exactly that and nothing else, so the per-inference cost is the runtime's own.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Protocol, Tuple

import numpy as np

from fleetnas.agent.records import RuntimeInfo, RuntimeOptions


@dataclass(frozen=True)
class InputSpec:
    """One model input after dynamic dimensions were fixed to 1; dtype is a numpy dtype name ("float32", "str")."""
    name: str
    shape: Tuple[int, ...]
    dtype: str

    def describe(self) -> str:
        return f"{self.name}:{self.dtype}[{','.join(str(d) for d in self.shape)}]"


@dataclass
class LoadedModel:
    """A model ready to run. ``bind(feeds)`` stages the inputs once and returns the callable that is timed."""
    inputs: Tuple[InputSpec, ...]
    bind: Callable[[Dict[str, np.ndarray]], Callable[[], object]]
    execution_provider: str
    provider_options: Tuple[Tuple[str, str], ...]
    intra_op_threads: int
    inter_op_threads: int
    allow_spinning: bool
    graph_optimization_level: str
    runtime_version: str
    handle: object = None   # the runtime's own session/interpreter, kept alive for the process' life


class Runtime(Protocol):
    """Registered under the ``fleetnas.runtimes`` entry-point group (fleetnas.agent.runtimes); built with no args."""
    name: str
    model_formats: Tuple[str, ...]   # names in fleetnas.agent.store.formats.FORMATS this runtime loads
    modules: Tuple[str, ...]         # importable packages, any one of which means "installed" (find_spec, no import)
    install_hint: str                # what to run when none of them is installed

    def info(self) -> RuntimeInfo:
        """Availability, exact version and EPs/delegates; never raises (unavailable -> message with the hint)."""
        ...

    # Optional: ``info_in_process() -> RuntimeInfo``, for a runtime whose info() probes in a child process (its
    # package would pull torch into the server); the worker calls it instead of info() to import the runtime there.

    def load(self, model_path: Path, options: RuntimeOptions, threads: int) -> LoadedModel:
        """Create the session/interpreter with explicit threads; raises the runtime's own error on a bad model."""
        ...


def dynamic_dim_to_one(dim: object) -> int:
    """Dynamic dims (None, -1, 0 from a symbolic name, or a str like "batch") become 1: batch 1, static shapes."""
    if isinstance(dim, (int, np.integer)) and int(dim) > 0:
        return int(dim)
    return 1


def make_inputs(specs: Tuple[InputSpec, ...], seed: int) -> Dict[str, np.ndarray]:
    """Deterministic inputs for every dtype a model can declare, made once before any timing.

    Floats: standard normal. Integers: 0 or 1 (valid as indices into any non-empty axis, so Gather and embedding
    lookups do not fail on random ids). Bools: fair coin. Strings: "a". Values rarely change the timing of dense
    networks; what matters is that the same seed gives the same bytes on every board.
    """
    rng = np.random.default_rng(seed)
    feeds: Dict[str, np.ndarray] = {}
    for spec in specs:
        shape = tuple(spec.shape)
        kind = spec.dtype
        if kind in ("str", "object", "string"):
            feeds[spec.name] = np.full(shape, "a", dtype=object)
            continue
        dtype = np.dtype(kind)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "c":
            feeds[spec.name] = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
        elif dtype.kind in "iu":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec.name] = rng.random(shape) < 0.5
        else:
            raise ValueError(f"input {spec.name!r} has dtype {kind!r}, which fleetnas cannot generate data for")
    return feeds


def unavailable(name: str, exc: Optional[BaseException], extra: str) -> RuntimeInfo:
    why = f"{type(exc).__name__}: {exc}" if exc else "not importable"
    return RuntimeInfo(name=name, available=False, message=f"runtime {name!r} not installed ({why}); {extra}")
