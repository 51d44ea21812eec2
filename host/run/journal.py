"""A search run's folder: ``run.json`` (the run's settings) and ``journal.sqlite`` (fleetnas.host.store.journal).

The journal is the search engine's own (one ``Search`` run per device class, named after the class: every proposal
and result as it happens, replayable). The controller adds, per trial, through ``record_measurement``:
- device ``host``, metric ``accuracy``: the sub-network's accuracy, with the exported model's sha256, path, size,
  MACs, params and the seconds spent evaluating and exporting it in the payload;
- device ``<board name>``, metric ``latency_ms`` (and ``energy_mj`` when measured): the median, with the whole
  measurement (every statistic of the MeasureResponse, device fingerprint, runtime configuration, emulated flag,
  whether it came from the measurement cache) in the payload.
Replaying the journal (``fleetnas report``) recomputes every front from these rows alone.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import Measurement

JOURNAL_NAME = "journal.sqlite"
RUN_FILE = "run.json"
HOST_DEVICE = "host"


@dataclass(frozen=True)
class Subnet:
    """What the host computed once for a configuration (shared by every device class)."""
    config_key: str
    accuracy: float
    model_sha256: str
    model_path: str
    size_bytes: int
    macs: Optional[int]
    params: Optional[int]
    accuracy_s: float
    export_s: float


@dataclass(frozen=True)
class TrialView:
    """One trial of a class as the report sees it."""
    trial_id: int
    config_key: str
    config: Dict[str, Any]
    state: str                         # pending | done | failed
    values: Optional[Dict[str, float]]
    error: Optional[str]
    subnet: Optional[Subnet]
    measurement: Optional[Measurement]  # the one that produced the values (None: failed or pending)


def open_journal(run_dir: Path):
    from fleetnas.host.store.journal import Journal
    return Journal(Path(run_dir) / JOURNAL_NAME)


def read_run(run_dir: Path) -> Dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file() or not (Path(run_dir) / JOURNAL_NAME).is_file():
        raise UsageError(f"{run_dir} holds no {RUN_FILE} and {JOURNAL_NAME}: not a fleetnas run folder "
                         f"(see `fleetnas search --out`)")
    return json.loads(path.read_text())


def write_run(run_dir: Path, settings: Dict[str, Any]) -> None:
    path = Path(run_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True))
    tmp.replace(path)


def measurement_payload(m: Measurement) -> Dict[str, Any]:
    return asdict(m)


def record_subnet(journal, trial_id: int, s: Subnet) -> None:
    journal.record_measurement(trial_id, HOST_DEVICE, "accuracy", s.accuracy, "fraction", asdict(s))


def record_measurement(journal, trial_id: int, m: Measurement) -> None:
    payload = measurement_payload(m)
    journal.record_measurement(trial_id, m.device_name, "latency_ms", float(m.latency_ms), "ms", payload)
    if m.energy_mj is not None:
        journal.record_measurement(trial_id, m.device_name, "energy_mj", float(m.energy_mj), "mJ",
                                   {"model_sha256": m.model_sha256, "device_fingerprint": m.device_fingerprint})


def trial_records(journal, trial_id: int) -> Tuple[Optional[Subnet], Optional[Measurement]]:
    """The trial's sub-network record and its last latency measurement (None when absent)."""
    subnet = measurement = None
    for r in journal.measurements(trial_id):
        if r.device == HOST_DEVICE and r.metric == "accuracy" and r.payload:
            subnet = Subnet(**r.payload)
        elif r.metric == "latency_ms" and r.payload:
            measurement = Measurement(**r.payload)
    return subnet, measurement


def class_trials(journal, device_class: str) -> List[TrialView]:
    """A class's trials in the order their results arrived (pending ones last, by proposal)."""
    found = journal.find_run(device_class)
    if found is None:
        return []
    run_id = found[0]
    trials = {t.trial_id: t for t in journal.trials(run_id)}
    order = [int(e.payload["trial_id"]) for e in journal.events(run_id) if e.kind == "result"]
    order += [t for t in trials if t not in set(order)]
    out = []
    for tid in order:
        t = trials[tid]
        subnet, measurement = trial_records(journal, tid)
        out.append(TrialView(tid, t.key, t.config, t.state, t.values, t.error, subnet,
                             measurement if t.state == "done" else None))
    return out


def all_measurements(journal, classes: List[str]) -> List[Measurement]:
    """Every board measurement recorded in the run (including ones from the cache), by class in result order."""
    out: List[Measurement] = []
    for c in classes:
        found = journal.find_run(c)
        if found is None:
            continue
        for t in journal.trials(found[0]):
            out += [Measurement(**r.payload) for r in journal.measurements(t.trial_id)
                    if r.metric == "latency_ms" and r.payload]
    return out
