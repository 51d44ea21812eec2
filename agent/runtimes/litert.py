"""LiteRT (ai-edge-litert; ``tflite_runtime`` accepted as a fallback import): ``Interpreter(num_threads=N)`` with the
default XNNPACK delegate. After ``allocate_tensors`` the execution plan is inspected: a DELEGATE node means XNNPACK
really took (part of) the graph, and that is what the result's config reports.

``execution_provider``: "" or "XNNPACK" (default delegates) | "NONE" (builtin kernels, no default delegate).
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from fleetnas.agent.records import RuntimeInfo, RuntimeOptions
from fleetnas.agent.runtimes.base import InputSpec, LoadedModel, dynamic_dim_to_one, unavailable

INSTALL_HINT = "pip install 'fleetnas[litert]'"
PROVIDERS = ("XNNPACK", "NONE")


def import_interpreter():
    """(Interpreter class, OpResolverType or None, version string); ImportError when neither package exists.
    Lazy imports: an optional extra, and only the worker process ever loads it."""
    try:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        return Interpreter, OpResolverType, "ai-edge-litert " + getattr(ai_edge_litert, "__version__", "?")
    except ImportError as first:
        try:
            import tflite_runtime
            from tflite_runtime.interpreter import Interpreter, OpResolverType
            return Interpreter, OpResolverType, "tflite-runtime " + getattr(tflite_runtime, "__version__", "?")
        except ImportError:
            raise first


class LiteRtRuntime:
    name = "litert"
    model_formats: Tuple[str, ...] = ("tflite",)
    modules: Tuple[str, ...] = ("ai_edge_litert", "tflite_runtime")
    install_hint = INSTALL_HINT

    def info(self) -> RuntimeInfo:
        try:
            _, _, version = import_interpreter()
        except Exception as exc:
            return unavailable(self.name, exc, INSTALL_HINT)
        return RuntimeInfo(name=self.name, available=True, version=version, providers=PROVIDERS)

    def load(self, model_path: Path, options: RuntimeOptions, threads: int) -> LoadedModel:
        Interpreter, OpResolverType, version = import_interpreter()
        provider = (options.execution_provider or "XNNPACK").upper()
        if provider not in PROVIDERS:
            raise ValueError(f"LiteRT delegate {options.execution_provider!r} is not supported; use one of "
                             f"{', '.join(PROVIDERS)}")
        resolver = (OpResolverType.AUTO if provider == "XNNPACK"
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter = Interpreter(model_path=str(model_path), num_threads=threads,
                                  experimental_op_resolver_type=resolver)
        for detail in interpreter.get_input_details():
            signature = detail.get("shape_signature", detail["shape"])
            if any(int(d) < 1 for d in signature):
                interpreter.resize_tensor_input(detail["index"], [dynamic_dim_to_one(int(d)) for d in signature])
        interpreter.allocate_tensors()
        details = interpreter.get_input_details()
        inputs = tuple(InputSpec(name=d["name"], shape=tuple(int(x) for x in d["shape"]),
                                 dtype=_dtype_name(d["dtype"])) for d in details)
        indices = {d["name"]: d["index"] for d in details}
        used = "XNNPACK" if provider == "XNNPACK" and _has_delegate_node(interpreter) else "NONE"

        def bind(feeds):
            for name, array in feeds.items():
                interpreter.set_tensor(indices[name], array)
            return interpreter.invoke

        return LoadedModel(inputs=inputs, bind=bind, execution_provider=used, provider_options=(),
                           intra_op_threads=threads, inter_op_threads=0, allow_spinning=False,
                           graph_optimization_level="", runtime_version=version, handle=interpreter)


def _dtype_name(dtype) -> str:
    kind = np.dtype(dtype)
    return "str" if kind.kind in "OSU" else kind.name


def _has_delegate_node(interpreter) -> bool:
    native = getattr(interpreter, "_interpreter", None)
    try:
        return any(native.NodeName(i) == "DELEGATE" for i in range(native.NumNodes()))
    except Exception:  # an interpreter build without these introspection hooks: cannot confirm
        return False
