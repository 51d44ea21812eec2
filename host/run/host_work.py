"""The host's per-sub-network work: extract, export and evaluate accuracy, in this process or on a Ray cluster.

`SubnetWorker` does the work for one configuration; the same code runs in the controller's process
(`InProcessHostWork`, the default) and in the workers of a Ray cluster (fleetnas.host.scale.ray_executor). A worker
rebuilds the super-network from a `SubnetWorkSpec`. The controller submits `SubnetTask`s and polls the finished
`SubnetResult`s, so exports and evaluations elsewhere never hold up the fleet.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol

from fleetnas.host.errors import FleetnasError, UsageError


def resolve_data(spec: str) -> Any:
    """--data: '' (the super-network's own evaluation data), an image folder, or module:callable returning
    ``f(resolution) -> iterable of (images, labels)`` (see fleetnas.host.accuracy.evaluator)."""
    if not spec:
        return None
    if Path(spec).expanduser().is_dir():
        return Path(spec).expanduser()
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise UsageError(f"--data {spec!r}: give an image folder (one sub-folder per class) or module:callable")
    import importlib
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--data {spec!r}: cannot load {attr!r} from module {module_name!r} ({exc})") from None


@dataclass(frozen=True)
class SubnetTask:
    key: str
    config: Dict[str, Any]
    accuracy: Optional[float] = None    # known already (accuracy cache): not evaluated again


@dataclass(frozen=True)
class SubnetWorkSpec:
    """What a worker needs to rebuild the super-network and export as the host would."""
    supernet: str
    weights_id: str
    weights_path: Optional[str]     # the host's checkpoint (a Ray worker gets its bytes from the object store)
    data: str                       # --data as given
    model_format: str               # the exporter's format, e.g. "onnx"
    precision: str = "fp32"
    export_dir: str = ""            # where this worker exports (the host's export cache when in-process)
    accuracy_id: str = ""           # the host's accuracy-cache id (weights and data) the deployed accuracy is keyed on


@dataclass
class SubnetResult:
    key: str
    accuracy: float = 0.0
    model_name: str = ""            # file name in the host's export cache
    model_path: str = ""            # where the worker wrote it
    model_sha256: str = ""
    size_bytes: int = 0
    macs: Optional[int] = None
    params: Optional[int] = None
    accuracy_s: float = 0.0
    export_s: float = 0.0
    model_bytes: Optional[bytes] = None   # the model and its metadata file, when the worker's disk is not the host's
    meta_bytes: Optional[bytes] = None
    evaluated: bool = False         # accuracy computed here (not given by the task): the host caches it
    # the model that ships (precision int8: the int8 file's accuracy); ``accuracy`` stays the float network's
    deployed_accuracy: float = 0.0
    int8_accuracy: Optional[float] = None
    accuracy_model: Optional[str] = None


class SubnetWorker:
    """Extract -> export -> accuracy for one configuration at a time; builds the super-network and evaluator once."""

    def __init__(self, spec: SubnetWorkSpec, supernet: Any = None, accuracy_cache: Any = None) -> None:
        self.spec = spec
        self._supernet = supernet
        self._evaluator = None
        self._exporter = None
        self._deployed = None
        self.accuracy_cache = accuracy_cache   # in the host's process only (a Ray worker evaluates every int8 model)

    @property
    def supernet(self):
        if self._supernet is None:
            from fleetnas.host.supernets.base import get_supernet
            self._supernet = get_supernet(self.spec.supernet, weights=self.spec.weights_path)
            if self._supernet.weights_id != self.spec.weights_id:
                raise FleetnasError(f"{self.spec.supernet}: this worker's weights ({self._supernet.weights_id[:12]}) "
                                    f"differ from the host's ({self.spec.weights_id[:12]}): install the same "
                                    f"fleetnas and super-network package on every node")
        return self._supernet

    def run(self, task: SubnetTask) -> SubnetResult:
        """The whole per-sub-network work, in one place: the exported model, then its accuracy."""
        supernet = self.supernet
        t0 = time.monotonic()
        exported = self.exporter().export(supernet, task.config, Path(self.spec.export_dir))
        t1 = time.monotonic()
        accuracy, evaluated = task.accuracy, task.accuracy is None
        if evaluated:
            if self._evaluator is None:
                self._evaluator = supernet.evaluator(resolve_data(self.spec.data))
            accuracy = float(self._evaluator.evaluate(task.config))
        deployed = self.deployed().evaluate(task.config, accuracy, exported, self.exporter(),
                                            cache=self.accuracy_cache, accuracy_id=self.spec.accuracy_id)
        t2 = time.monotonic()
        macs = params = None
        try:
            macs, params = int(supernet.macs(task.config)), int(supernet.params(task.config))
        except (NotImplementedError, AttributeError):
            pass
        path = Path(exported.path)
        return SubnetResult(task.key, accuracy, path.name, str(path), exported.sha256, exported.size_bytes, macs,
                            params, accuracy_s=t2 - t1, export_s=t1 - t0, evaluated=evaluated,
                            deployed_accuracy=deployed.accuracy, int8_accuracy=deployed.int8_accuracy,
                            accuracy_model=deployed.accuracy_model)

    def deployed(self):
        """Evaluates the exported model itself when it is not the float network (fleetnas.host.accuracy.deployed)."""
        if self._deployed is None:
            from fleetnas.host.accuracy.deployed import DeployedEvaluator
            self._deployed = DeployedEvaluator(self.supernet, self.spec.precision, resolve_data(self.spec.data),
                                               Path(self.spec.export_dir))
        return self._deployed

    def exporter(self):
        if self._exporter is None:
            from fleetnas.host.export.registry import get_exporter
            self._exporter = get_exporter(self.spec.model_format, self.spec.precision)
        return self._exporter


def read_model_files(result: SubnetResult) -> SubnetResult:
    """The exported model and its metadata file as bytes, for a host that does not share this worker's disk."""
    path = Path(result.model_path)
    result.model_bytes = path.read_bytes()
    meta = path.with_suffix(path.suffix + ".json")
    result.meta_bytes = meta.read_bytes() if meta.is_file() else None
    return result


def write_model_files(result: SubnetResult, export_dir: Path) -> Path:
    """Into the host's export cache (where the dispatcher uploads from): the model checked against its sha256."""
    import hashlib
    from fleetnas.host.export.onnx import write_atomic
    if result.model_bytes is None:
        return Path(result.model_path)
    if hashlib.sha256(result.model_bytes).hexdigest() != result.model_sha256:
        raise FleetnasError(f"sub-network {result.key}: the model file from the worker is damaged (sha256 differs)")
    path = Path(export_dir) / result.model_name
    write_atomic(path, result.model_bytes)
    if result.meta_bytes is not None:
        write_atomic(path.with_suffix(path.suffix + ".json"), result.meta_bytes)
    return path


class HostWork(Protocol):
    """Where sub-networks are extracted, exported and evaluated."""

    def submit(self, task: SubnetTask) -> None:
        """Start the work for ``task`` (a result comes back from ``results`` once)."""

    def results(self, timeout_s: float = 0.0) -> List[SubnetResult]:
        """The results finished since the last call (waits up to ``timeout_s`` for the first one)."""

    @property
    def pending(self) -> int:
        """Submitted and not returned yet."""

    def close(self) -> None:
        """Release the workers."""


class InProcessHostWork:
    """The default: the work runs in the controller's thread when submitted, one sub-network after another."""

    def __init__(self, spec: SubnetWorkSpec, supernet: Any = None, accuracy_cache: Any = None) -> None:
        self.worker = SubnetWorker(spec, supernet, accuracy_cache)
        self._done: List[SubnetResult] = []

    def submit(self, task: SubnetTask) -> None:
        self._done.append(self.worker.run(task))   # a failure raises here, as it always has

    def results(self, timeout_s: float = 0.0) -> List[SubnetResult]:
        done, self._done = self._done, []
        return done

    @property
    def pending(self) -> int:
        return len(self._done)

    def close(self) -> None:
        self._done = []
