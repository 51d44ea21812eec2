"""`RunStore`: one search run's folder, ``run.json`` (its settings) and ``journal.sqlite`` (host.store.journal).

What a run keeps, each in its own place:
- settings (``run.json``): super-network, weights, data, objectives, seed, tactic and options, budget, runtime
  configuration, device classes and devices, and ``run_uid``: a random identity made when the run is created and kept
  on resume (the agents' request ids carry it, so no other run is ever answered with this run's measurements);
- sub-networks (table ``subnets``), once per configuration for the whole run: accuracy, the exported model's sha256,
  path and size, MACs, params and the seconds spent evaluating and exporting it; with ``precision`` int8 the accuracy
  is the int8 model's, next to the float network's and the name of the model evaluated;
- per device class, the search engine's run named after the class: trials, ask/result events, round reports; a trial
  is marked dispatched when it is sent to the fleet;
- with ``fleet_mode`` joint (run.json), the order of the joint search's calls (journal table ``fleet_calls``): what
  a resume replays to rebuild the search; each class's trials are in its run as above;
- measurements, per trial: device ``<board name>``, metric ``latency_ms`` (the median, with the whole measurement in
  the payload: every statistic of the MeasureResponse, device fingerprint, runtime configuration, emulated flag,
  whether it came from the measurement cache or, ``replayed``, from an agent's memory of the run's request) and
  ``energy_mj`` when measured.
Replaying the journal (``fleetnas report``) recomputes every front from these alone. Journals written before
sub-networks had their own table are migrated when opened (fleetnas.host.store.journal, schema 2).

``RunStore.create`` starts a run, ``RunStore.resume`` continues one (its settings checked once, here), ``RunStore.open``
reads one (report, export). One thread owns a ``RunStore``; `Search` writes its trials through ``store.journal``.

Resume and open first check the folder and refuse, in one line, what they cannot trust: an empty (0-byte) journal, a
write-ahead log that is cut short or fails its checksums (SQLite would silently drop its last writes), pages that fail
SQLite's integrity check, or a journal whose device classes and search settings are not the ones run.json names. A
log that merely ends in an unfinished transaction (the host was stopped mid-write) is said in ``notes``.
"""
from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import Measurement
from fleetnas.host.store.journal import FleetCall, Journal, JournalError, Subnet
from fleetnas.host.store.settings import settings_changes
from fleetnas.host.store.wal import inspect_wal

JOURNAL_FILE = "journal.sqlite"
RUN_UID_KEY = "run_uid"
RUN_FILE = "run.json"
MODELS_DIR = "models"
# run.json settings a resume must keep (the budget, the validation cap, data and fleet may change)
RESUME_KEYS = ("supernet", "weights", "objectives", "seed", "tactic", "tactic_options", "runtime", "fleet_mode",
               "precision")
# what a run.json written before a setting existed meant
SETTING_DEFAULTS = {"fleet_mode": "independent", "validations": None, "precision": "fp32"}
# run.json settings every device class's search in the journal was started with
_CLASS_SEARCH_KEYS = ("seed", "tactic", "tactic_options")

__all__ = ["RunStore", "Subnet", "TrialView", "PendingTrial", "RESUME_KEYS"]


@dataclass(frozen=True)
class TrialView:
    """One trial of a class as the report sees it."""
    trial_id: int
    config_key: str
    config: Dict[str, Any]
    state: str                          # pending | done | failed
    values: Optional[Dict[str, float]]
    error: Optional[str]
    subnet: Optional[Subnet]
    measurement: Optional[Measurement]  # the one that produced the values (None: failed or pending)


@dataclass(frozen=True)
class PendingTrial:
    """A trial without a result when the run was opened: what a resumed controller needs to finish it."""
    trial_id: int
    config_key: str
    dispatched: bool                     # sent to the fleet by the host before (an agent may hold its result)
    measurement: Optional[Measurement]   # measured and journaled, not yet told to the search


def _measurement(payload: Mapping[str, Any]) -> Measurement:
    return Measurement(**payload)


class RunStore:
    """A run folder. Use ``create``, ``resume`` or ``open``; ``close`` (or ``with``) when done."""

    def __init__(self, run_dir: Path, settings: Dict[str, Any], *, created: Sequence[Path] = (),
                 check: bool = False) -> None:
        """``check``: an existing run, checked before use (see the module's docstring)."""
        self.run_dir = Path(run_dir)
        self._settings = dict(settings)
        self._created = tuple(created)   # what ``create`` made, removed again by ``discard``
        self.notes: List[str] = []       # what the checks found that is worth saying but not refusing
        # (cap before, cap now) when this resume changed a joint run's --validations
        self.validation_cap_change: Optional[Tuple[Optional[int], Optional[int]]] = None
        if check:
            self._check_files()
        self.journal = Journal(self.run_dir / JOURNAL_FILE)
        if check:
            try:
                self.journal.check_integrity()
                self._check_consistent()
            except BaseException:
                self.journal.close()
                raise

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, run_dir: Path, settings: Dict[str, Any]) -> "RunStore":
        """A new run in ``run_dir`` (created if needed); refused when the folder already holds one."""
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise UsageError(f"--out {run_dir} is a file; give a folder")
        if (run_dir / RUN_FILE).exists() or (run_dir / JOURNAL_FILE).exists():
            raise UsageError(f"{run_dir} already holds a run: add --resume to continue it, or pick a new --out")
        created = [p for p in (run_dir, run_dir / MODELS_DIR) if not p.exists()]
        created += [run_dir / RUN_FILE] + [run_dir / (JOURNAL_FILE + s) for s in ("", "-wal", "-shm")]
        run_dir.mkdir(parents=True, exist_ok=True)
        store = cls(run_dir, {**settings, RUN_UID_KEY: secrets.token_hex(8)}, created=created)
        store._write_settings()
        return store

    @classmethod
    def resume(cls, run_dir: Path, settings: Dict[str, Any], classes: Sequence[str],
               search_settings: Optional[Mapping[str, Any]] = None) -> "RunStore":
        """The run in ``run_dir``, continued with ``settings``: every key of ``RESUME_KEYS`` must be unchanged, every
        device class of the run still in the fleet, and each class's search started with ``search_settings`` (e.g.
        ``{"space": ...}``). This is the one check of a resume: one error lists everything that differs."""
        run_dir = Path(run_dir)
        if not (run_dir / RUN_FILE).exists():
            raise UsageError(f"--resume: {run_dir} holds no run to continue; drop --resume to start one")
        stored = {**SETTING_DEFAULTS, **cls.read_settings(run_dir)}
        changes = settings_changes(stored, {**SETTING_DEFAULTS, **settings}, RESUME_KEYS)
        changes += [f"device class {c} is gone" for c in stored.get("classes", []) if c not in classes]
        store = cls(run_dir, stored, check=True)
        # a run started before runs had an identity gets one now (its in-flight requests are then measured again)
        store._settings = {**settings, RUN_UID_KEY: stored.get(RUN_UID_KEY) or secrets.token_hex(8)}
        for c in classes if search_settings else ():
            found = store.journal.find_run(c)
            if found is not None:
                changes += [x for x in settings_changes(found[1], search_settings, search_settings)
                            if x not in changes]
        if changes:
            store.close()
            raise UsageError(f"--resume with different settings ({', '.join(changes)}); resume with the original "
                             f"ones or start a new --out folder")
        store._journal_validation_cap(stored, settings.get("validations"))
        store._write_settings()
        return store

    def validation_caps(self, stored: Optional[Mapping[str, Any]] = None) -> Tuple[Optional[int], Optional[int]]:
        """A joint run's cap on validations: (the one it started with, the one in force now). The journal's
        ``validations`` calls are the record (run.json only follows them)."""
        changes = [c.payload for c in self.fleet_calls() if c.call == "validations"]
        cap = (self._settings if stored is None else stored).get("validations")
        return (changes[0]["from"], changes[-1]["to"]) if changes else (cap, cap)

    def _journal_validation_cap(self, stored: Mapping[str, Any], cap: Optional[int]) -> None:
        """A joint run resumed with another --validations: the change is journaled before run.json says so, in
        the order of the search's calls, so a replay applies it where it happened."""
        if stored.get("fleet_mode") != "joint":
            return
        _, current = self.validation_caps(stored)
        if cap != current:
            self.add_fleet_call("validations", {"from": current, "to": cap})
            self.validation_cap_change = (current, cap)

    @classmethod
    def open(cls, run_dir: Path) -> "RunStore":
        """A run folder to read (report, export)."""
        return cls(run_dir, cls.read_settings(run_dir), check=True)

    @staticmethod
    def read_settings(run_dir: Path) -> Dict[str, Any]:
        path = Path(run_dir) / RUN_FILE
        if not path.is_file() or not (Path(run_dir) / JOURNAL_FILE).is_file():
            raise UsageError(f"{run_dir} holds no {RUN_FILE} and {JOURNAL_FILE}: not a fleetnas run folder "
                             f"(see `fleetnas search --out`)")
        try:
            settings = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"{path} cannot be read ({str(exc).splitlines()[0]}): restore it from a backup of the "
                             f"run folder") from None
        if not isinstance(settings, dict):
            raise UsageError(f"{path} is not a fleetnas run's settings: restore it from a backup of the run folder")
        return settings

    def _check_files(self) -> None:
        """Before SQLite opens the journal (it would start an empty file afresh and replay a cut log silently)."""
        path = self.run_dir / JOURNAL_FILE
        if path.is_file() and path.stat().st_size == 0:
            raise JournalError(f"{path} is empty (0 bytes): the run's trials are gone; restore the file from a "
                               f"backup, or start the search again in a new --out folder")
        wal_path = Path(str(path) + "-wal")
        wal = inspect_wal(wal_path)
        if wal is None:
            return
        if wal.problem:
            raise JournalError(
                f"{wal_path} is cut short or damaged ({wal.problem}): only its first {wal.committed_frames} of "
                f"{wal.frames}+ frames are whole transactions, so the run's last writes would be lost; if it was copied "
                f"while the host ran, copy the run folder again; to continue from the whole part, cut the file there "
                f"(truncate -s {wal.committed_bytes} {wal_path})")
        if wal.uncommitted_frames:
            self.notes.append(f"{wal_path.name} ends in a transaction the host did not finish ({wal.uncommitted_frames}"
                              f" frame(s), as a host stopped mid-write leaves it); continuing from the last complete one")

    def _check_consistent(self) -> None:
        """The journal's device classes and their searches are the ones run.json names."""
        runs = self.journal.runs()
        classes = list(self._settings.get("classes", []))
        problems = [f"it holds device class {name}, which {RUN_FILE} does not list (it lists "
                    f"{', '.join(classes) or 'none'})" for name in runs if name not in classes]
        for name, search in runs.items():
            problems += [f"device class {name} was searched with {key} {search[key]!r}, {RUN_FILE} says "
                         f"{self._settings[key]!r}" for key in _CLASS_SEARCH_KEYS
                         if key in search and key in self._settings and search[key] != self._settings[key]]
        if problems:
            raise JournalError(f"{self.run_dir / JOURNAL_FILE} does not belong with {self.run_dir / RUN_FILE} "
                               f"({'; '.join(problems)}): put back the {RUN_FILE} written with this journal")

    @property
    def settings(self) -> Dict[str, Any]:
        return dict(self._settings)

    @property
    def run_uid(self) -> str:
        """The run's identity in the agents' request ids ("" for a run folder written before runs had one)."""
        return str(self._settings.get(RUN_UID_KEY) or "")

    def _write_settings(self) -> None:
        path = self.run_dir / RUN_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._settings, indent=2, sort_keys=True))
        tmp.replace(path)

    def close(self) -> None:
        self.journal.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def discard(self) -> None:
        """Close and remove what ``create`` made: a run that never started leaves nothing behind."""
        self.close()
        for path in reversed(self._created):
            if path.is_dir():
                if path.name == MODELS_DIR:
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    try:
                        path.rmdir()      # only if empty: never remove anything the user put there
                    except OSError:
                        pass
            elif path.exists():
                path.unlink()

    # ------------------------------------------------------------------ sub-networks and measurements
    def subnets(self) -> Dict[str, Subnet]:
        """The run's sub-networks by configuration key."""
        return {s.config_key: s for s in self.journal.subnets()}

    def add_subnet(self, subnet: Subnet) -> None:
        self.journal.record_subnet(subnet)

    def mark_dispatched(self, trial_id: int) -> None:
        self.journal.record_dispatch(trial_id)

    def add_measurement(self, trial_id: int, m: Measurement) -> None:
        self.journal.record_measurement(trial_id, m.device_name, "latency_ms", float(m.latency_ms), "ms", asdict(m))
        if m.energy_mj is not None:
            self.journal.record_measurement(trial_id, m.device_name, "energy_mj", float(m.energy_mj), "mJ",
                                            {"model_sha256": m.model_sha256,
                                             "device_fingerprint": m.device_fingerprint})

    # ------------------------------------------------------------------ a joint fleet search
    def class_run(self, device_class: str, settings: Dict[str, Any]) -> int:
        """The journal run holding ``device_class``'s trials in a joint search (created on first use)."""
        return self.journal.open_run(device_class, settings, resume=True)[0]

    def fleet_calls(self) -> List[FleetCall]:
        return self.journal.fleet_calls()

    def add_fleet_call(self, call: str, payload: Dict[str, Any]) -> None:
        self.journal.record_fleet_call(call, payload)

    def add_fleet_ask(self, n_requested: int, proposals: Sequence[Dict[str, Any]], run_ids: Dict[str, int],
                      round_report: Optional[Dict[str, Any]] = None) -> List[Dict[str, int]]:
        return self.journal.record_fleet_ask(n_requested, proposals, run_ids, round_report)

    def fleet_round_reports(self) -> List[Dict[str, Any]]:
        """A joint search's reports of its model-based rounds (predictors chosen and their errors), in order."""
        return [c.payload["round_report"] for c in self.journal.fleet_calls()
                if c.call == "ask" and "round_report" in c.payload]

    def add_fleet_result(self, run_id: int, trial_id: int, device_class: str, key: str,
                         values: Optional[Dict[str, float]], error: Optional[str] = None) -> None:
        self.journal.record_fleet_result(run_id, trial_id, device_class, key, values, error)

    def trial_values(self, run_id: int) -> Dict[int, Optional[Dict[str, float]]]:
        """A run's trials' objective values by trial id (None: pending or failed)."""
        return {t.trial_id: t.values for t in self.journal.trials(run_id)}

    def _latency_measurements(self, run_id: int) -> Dict[int, Measurement]:
        """Per trial its last latency measurement."""
        return {r.trial_id: _measurement(r.payload) for r in self.journal.run_measurements(run_id)
                if r.metric == "latency_ms" and r.payload}

    # ------------------------------------------------------------------ trials of a device class
    def pending(self, device_class: str) -> Dict[int, PendingTrial]:
        """The class's trials without a result, by trial id."""
        found = self.journal.find_run(device_class)
        if found is None:
            return {}
        measured = self._latency_measurements(found[0])
        return {t.trial_id: PendingTrial(t.trial_id, t.key, t.dispatched, measured.get(t.trial_id))
                for t in self.journal.trials(found[0]) if t.state == "pending"}

    def class_trials(self, device_class: str) -> List[TrialView]:
        """A class's trials in the order their results arrived (pending ones last, by proposal)."""
        found = self.journal.find_run(device_class)
        if found is None:
            return []
        run_id = found[0]
        trials = {t.trial_id: t for t in self.journal.trials(run_id)}
        order = [int(e.payload["trial_id"]) for e in self.journal.events(run_id) if e.kind == "result"]
        told = set(order)
        order += [t for t in trials if t not in told]
        subnets, measured = self.subnets(), self._latency_measurements(run_id)
        out = []
        for tid in order:
            t = trials[tid]
            out.append(TrialView(tid, t.key, t.config, t.state, t.values, t.error, subnets.get(t.key),
                                 measured.get(tid) if t.state == "done" else None))
        return out

    def measurements(self, classes: Optional[Sequence[str]] = None) -> List[Measurement]:
        """Every board measurement recorded in the run (including ones from the cache), by class in record order."""
        out: List[Measurement] = []
        for c in (self._settings.get("classes", []) if classes is None else classes):
            found = self.journal.find_run(c)
            if found is not None:
                out += [_measurement(r.payload) for r in self.journal.run_measurements(found[0])
                        if r.metric == "latency_ms" and r.payload]
        return out
