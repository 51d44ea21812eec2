"""Assembling an agent: the one place that joins store, hygiene (cool-down, stability gate, energy, drift canary)
and service, so that `fleetnas-agent serve`, `selftest` and the tests all measure through the same path.
The config sections it reads come from fleetnas.agent.config.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from fleetnas.agent.measure.hygiene import build_hygiene, make_measure_fn
from fleetnas.agent.measure.service import DEFAULT_MAX_MEASURE_S, AgentService, MeasureFn
from fleetnas.agent.store.model_store import ModelStore


def hygienic_measure_fn(cache_dir: Path, config: Optional[Dict[str, Any]] = None) -> MeasureFn:
    config = config or {}
    canary_every = int(config.get("hygiene", {}).get("canary_every", 20))
    meter, _, state = build_hygiene(Path(cache_dir) / "reference", config.get("power"), canary_every=canary_every)
    return make_measure_fn(meter, state)


def make_service(store: ModelStore, cache_dir: Path, config: Optional[Dict[str, Any]] = None, *,
                 measure_fn: Optional[MeasureFn] = None, emulated: bool = False,
                 max_measure_s: float = DEFAULT_MAX_MEASURE_S) -> AgentService:
    """The agent's service; ``measure_fn`` replaces the hygienic real measurement (emulation). ``max_measure_s``:
    the ceiling on one worker run that no request's timeout_s can lift."""
    return AgentService(store, measure_fn=measure_fn or hygienic_measure_fn(cache_dir, config), emulated=emulated,
                        max_measure_s=max_measure_s)
