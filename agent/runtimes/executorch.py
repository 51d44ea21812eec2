"""ExecuTorch (the optional ``[executorch]`` extra): ``.pte`` programs run by ``executorch.runtime`` with the XNNPACK
delegate the host lowered them to, on an explicit number of threads.

ExecuTorch's Python runtime links against libtorch and importing it imports torch (5-8 s, ~400 MB). The agent's
server never does: ``info()`` asks a short-lived child process (``python -m fleetnas.agent.runtimes.executorch``),
and only the measurement worker imports the runtime (``info_in_process()`` then ``load()``), so the server stays
torch-free and a board without the extra simply lists the runtime as not installed. The probe's answer is kept in
the user's cache folder, keyed by the installed executorch and torch (their RECORD of installed files), so a restart
does not pay the import again; reinstalling either one probes anew.

Threads: ExecuTorch's XNNPACK delegate runs on one process-wide thread pool; the only control it exposes to Python
is the portable library's ``_unsafe_reset_threadpool(n)``, which is safe here because the worker runs one model
in a fresh process before anything else uses the pool. The count is read back and reported, not assumed.

``execution_provider``: "" or "XNNPACK" (what the host's exporter delegates to; operators the delegate did not take
run on ExecuTorch's portable kernels inside the same program).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional, Tuple

from fleetnas.agent.records import RuntimeInfo, RuntimeOptions
from fleetnas.agent.runtimes.base import InputSpec, LoadedModel, unavailable

INSTALL_HINT = ("pip install 'fleetnas[executorch]' (ExecuTorch's Python runtime needs torch on the board; "
                "install torch first, e.g. pip install torch==2.13.0)")
PROVIDERS = ("XNNPACK",)
PROBE_TIMEOUT_S = 120.0   # importing executorch imports torch: seconds on a loaded board

# ExecuTorch ScalarType codes (same numbering as c10::ScalarType) -> numpy dtype names.
_SCALAR_TYPES: Dict[int, str] = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
                                 6: "float32", 7: "float64", 11: "bool"}


def _import_runtime():
    """(Runtime class, portable pybindings module, version string); ImportError when executorch is missing.
    Lazy: an optional extra that imports torch, so only the worker process (or the probe child) calls this."""
    import executorch.extension.pybindings.portable_lib as portable
    from executorch.runtime import Runtime

    version = "executorch " + metadata.version("executorch")
    torch_module = sys.modules.get("torch")   # executorch imported it; reported because the .so files link to it
    if torch_module is not None:
        version += f" (torch {getattr(torch_module, '__version__', '?')})"
    return Runtime, portable, version


def _in_process_info(name: str) -> RuntimeInfo:
    try:
        Runtime, _, version = _import_runtime()
        registry = Runtime.get().backend_registry
        # only the backends that can run here (a build lists e.g. OpenVINO even when its library is absent)
        backends = tuple(b for b in registry.registered_backend_names if registry.is_available(b))
    except Exception as exc:  # ImportError, or a wheel built against another torch failing to link
        return unavailable(name, exc, INSTALL_HINT)
    if not any("xnnpack" in b.lower() for b in backends):
        return RuntimeInfo(name=name, available=False, version=version,
                           message=f"runtime {name!r}: this ExecuTorch build has no usable XNNPACK backend "
                                   f"(backends: {', '.join(backends) or 'none'}); {INSTALL_HINT}")
    return RuntimeInfo(name=name, available=True, version=version,
                       providers=PROVIDERS + tuple(sorted(b for b in backends if "xnnpack" not in b.lower())))


class ExecuTorchRuntime:
    name = "executorch"
    model_formats: Tuple[str, ...] = ("pte",)
    modules: Tuple[str, ...] = ("executorch",)
    install_hint = INSTALL_HINT

    def __init__(self) -> None:
        self._info: Optional[RuntimeInfo] = None

    def info(self) -> RuntimeInfo:
        """Asked of a child process, once: importing executorch would pull torch into the caller."""
        if self._info is None:
            self._info = self._probe_in_child()
        return self._info

    def info_in_process(self) -> RuntimeInfo:
        """The worker's variant: import the runtime here, so the timed load is program loading only."""
        self._info = _in_process_info(self.name)
        return self._info

    def _probe_in_child(self) -> RuntimeInfo:
        try:
            installed = importlib.util.find_spec("executorch") is not None
        except (ImportError, ValueError) as exc:   # a broken or half-removed install
            return unavailable(self.name, exc, INSTALL_HINT)
        if not installed:   # no child needed to say so
            return unavailable(self.name, None, INSTALL_HINT)
        cache = _probe_cache_path()
        if cache is not None:
            try:
                d = json.loads(cache.read_text())
                return RuntimeInfo(**{**d, "providers": tuple(d["providers"])})
            except (OSError, ValueError, TypeError, KeyError):
                pass
        info = self._run_probe()
        if cache is not None and info.available:   # failures are probed again next time
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(asdict(info)))
            except OSError:   # a read-only home: probe every start instead
                pass
        return info

    def _run_probe(self) -> RuntimeInfo:
        try:
            out = subprocess.run([sys.executable, "-m", "fleetnas.agent.runtimes.executorch"], capture_output=True,
                                 text=True, timeout=PROBE_TIMEOUT_S, check=True).stdout
            d = json.loads(out.strip().splitlines()[-1])
            return RuntimeInfo(**{**d, "providers": tuple(d["providers"])})
        except subprocess.CalledProcessError as exc:
            last = (exc.stderr or "").strip().splitlines()[-1:] or ["no message"]
            return unavailable(self.name, RuntimeError(f"probe exited {exc.returncode}: {last[0]}"), INSTALL_HINT)
        except (OSError, subprocess.SubprocessError, ValueError, TypeError, KeyError, IndexError) as exc:
            return unavailable(self.name, exc, INSTALL_HINT)

    def load(self, model_path: Path, options: RuntimeOptions, threads: int) -> LoadedModel:
        import torch  # executorch already imported it (its extensions link to libtorch); tensors cross as torch's

        Runtime, portable, version = _import_runtime()
        provider = (options.execution_provider or "XNNPACK").upper()
        if provider not in PROVIDERS:
            raise ValueError(f"ExecuTorch backend {options.execution_provider!r} is not supported; use one of "
                             f"{', '.join(PROVIDERS)} (the host lowers .pte programs to XNNPACK)")
        portable._unsafe_reset_threadpool(int(threads))
        used_threads = int(portable._threadpool_get_thread_count())
        program = Runtime.get().load_program(Path(model_path))
        method = program.load_method("forward")
        meta = method.metadata
        inputs = []
        for i in range(meta.num_inputs()):
            tensor = meta.input_tensor_meta(i)
            dtype = _SCALAR_TYPES.get(int(tensor.dtype()))
            if dtype is None:
                raise ValueError(f"input {i} has ExecuTorch scalar type {int(tensor.dtype())}, which fleetnas "
                                 f"cannot generate data for")
            inputs.append(InputSpec(name=f"input_{i}", shape=tuple(int(d) for d in tensor.sizes()), dtype=dtype))
        specs = tuple(inputs)

        def bind(feeds):  # staged once as torch tensors; the timed call is execute() and nothing else
            staged = [torch.from_numpy(feeds[spec.name]) for spec in specs]
            return functools.partial(method.execute, staged)

        return LoadedModel(inputs=specs, bind=bind, execution_provider=provider, provider_options=(),
                           intra_op_threads=used_threads, inter_op_threads=0, allow_spinning=False,
                           graph_optimization_level="", runtime_version=version, handle=(program, method))


def _probe_cache_path() -> Optional[Path]:
    """Where the probe's answer for exactly this install is kept (None when the install cannot be identified)."""
    try:
        stamp = hashlib.sha256(sys.executable.encode())
        for name in ("executorch", "torch"):
            record = metadata.distribution(name).read_text("RECORD")   # every installed file with its hash
            if not record:
                return None
            stamp.update(record.encode())
    except (metadata.PackageNotFoundError, OSError, ValueError):
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = stamp.hexdigest()[:20]
    return base / "fleetnas-agent" / f"executorch-probe-{digest}.json"


if __name__ == "__main__":  # the child probe behind ExecuTorchRuntime.info()
    print(json.dumps(asdict(_in_process_info(ExecuTorchRuntime.name))))
