"""Sub-network work on a Ray cluster (``fleetnas search --ray [ADDRESS]``).

A pool of Ray actors, each a `SubnetWorker` that rebuilds the super-network once: the checkpoint goes into the
object store once and every actor reads it from there. With GPUs in the cluster each actor holds one (and the pool
has one actor per GPU), else one CPU. The controller submits sub-networks and polls the finished ones (`ray.wait`
without blocking), so the fleet keeps measuring meanwhile. Exported model files come back as bytes; the host writes
them into its export cache, from where the dispatcher uploads them as usual. A worker process that dies is restarted
and its sub-networks are run again; a sub-network that fails otherwise stops the run with the reason, and the run
folder keeps everything measured (``--resume`` continues it).
This is the only module that imports Ray (the optional extra ``fleetnas[ray]``).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from fleetnas.host.errors import FleetnasError, UsageError
from fleetnas.host.run.host_work import SubnetResult, SubnetTask, SubnetWorker, SubnetWorkSpec, read_model_files

INSTALL_HINT = "--ray needs Ray on this host (and on every node of the cluster): pip install 'fleetnas[ray]'"
LOCAL = "local"            # --ray without an address: start a Ray instance on this machine for the run
RESTARTS = 3               # a worker process that dies is restarted (and its sub-networks run again) this often


def check_ray():
    """The ray module, or a UsageError with the install hint (before any work starts)."""
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


class _SubnetActor:
    """One Ray worker: a SubnetWorker exporting into its own temporary folder."""

    def __init__(self, spec: SubnetWorkSpec, weights: Optional[bytes]) -> None:
        self.dir = tempfile.mkdtemp(prefix="fleetnas-subnets-")
        weights_path = spec.weights_path
        if weights is not None:     # the host's checkpoint, from the object store
            weights_path = os.path.join(self.dir, Path(spec.weights_path).name)
            with open(weights_path, "wb") as f:
                f.write(weights)
        self.worker = SubnetWorker(replace(spec, weights_path=weights_path, export_dir=os.path.join(self.dir, "m")))

    def run(self, task: SubnetTask) -> SubnetResult:
        result = read_model_files(self.worker.run(task))
        path = Path(result.model_path)   # sent to the host: not kept here
        for p in (path, path.with_suffix(path.suffix + ".json")):
            if p.is_file():
                p.unlink()
        return result

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "dir", ""), ignore_errors=True)


class RayHostWork:
    """`HostWork` on the Ray cluster at ``address`` (``"local"``: start one on this machine, stopped at close).
    ``workers``: actors in the pool (default: one per GPU, else one per CPU of the cluster)."""

    def __init__(self, spec: SubnetWorkSpec, address: str = LOCAL, *, workers: Optional[int] = None,
                 init_options: Optional[Dict[str, Any]] = None) -> None:
        ray = self.ray = check_ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        options: Dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING}
        if not address or address == LOCAL:
            options.update(address=LOCAL, _node_ip_address="127.0.0.1")
        else:
            options.update(address=address)
        options.update(init_options or {})
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            reason = str(exc).splitlines()[0]
            if options["address"] == LOCAL:
                raise UsageError(f"--ray: could not start a Ray cluster on this machine ({reason}); Ray's own logs "
                                 f"are in its session folder (RAY_TMPDIR, default /tmp/ray); a slow machine can "
                                 f"give it longer with RAY_gcs_server_port_wait_time_s=120") from None
            raise UsageError(f"--ray {address}: cannot connect to the Ray cluster ({reason}); "
                             f"give the head node's address as `ray start --head` printed it, e.g. "
                             f"--ray 10.0.0.5:6379, or --ray alone for one on this machine") from None
        try:
            resources = ray.cluster_resources()
            gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
            self.gpu = gpus > 0
            count = workers or (gpus if self.gpu else max(1, cpus))
            per_actor = {"num_gpus": 1} if self.gpu else {"num_cpus": 1}
            weights = ray.put(Path(spec.weights_path).read_bytes()) if spec.weights_path else None
            actor = ray.remote(max_restarts=RESTARTS, max_task_retries=RESTARTS)(_SubnetActor)
            self.actors = [actor.options(**per_actor).remote(spec, weights) for _ in range(count)]
            self._load = [0] * count
            self._inflight: Dict[Any, Tuple[SubnetTask, int]] = {}   # object ref -> (task, actor index)
        except BaseException:
            ray.shutdown()
            raise

    def submit(self, task: SubnetTask) -> None:
        i = min(range(len(self.actors)), key=self._load.__getitem__)   # the least busy worker
        self._load[i] += 1
        self._inflight[self.actors[i].run.remote(task)] = (task, i)

    def results(self, timeout_s: float = 0.0) -> List[SubnetResult]:
        if not self._inflight:
            return []
        refs = list(self._inflight)
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        out = []
        for ref in ready:
            task, i = self._inflight.pop(ref)
            self._load[i] -= 1
            try:
                out.append(self.ray.get(ref))
            except self.ray.exceptions.RayError as exc:
                raise FleetnasError(f"sub-network {task.key} failed on the Ray cluster: {_reason(exc)}") from None
        return out

    @property
    def pending(self) -> int:
        return len(self._inflight)

    def close(self) -> None:
        self._inflight.clear()
        for a in getattr(self, "actors", []):
            self.ray.kill(a)
        self.ray.shutdown()


def _reason(exc: BaseException) -> str:
    """The worker's own error when it raised one, else Ray's first line (a worker that kept dying)."""
    cause = getattr(exc, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
