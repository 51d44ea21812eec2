"""onnxruntime, configured per the methodology: explicit intra-op threads, one inter-op thread, sequential
execution, spinning as requested (``session.intra_op.allow_spinning``), CPU EP unless another available one is named.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, Tuple

from fleetnas.agent.records import RuntimeInfo, RuntimeOptions
from fleetnas.agent.runtimes.base import InputSpec, LoadedModel, dynamic_dim_to_one, unavailable

INSTALL_HINT = "pip install onnxruntime (a base dependency of fleetnas: pip install fleetnas)"

# onnxruntime's type strings -> numpy dtype names.
_DTYPES: Dict[str, str] = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
    "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool", "tensor(string)": "str",
}
_OPT_LEVELS = {"": "ORT_ENABLE_ALL", "all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED",
               "basic": "ORT_ENABLE_BASIC", "disable": "ORT_DISABLE_ALL", "disable_all": "ORT_DISABLE_ALL"}


class OnnxRuntime:
    name = "onnxruntime"
    model_formats: Tuple[str, ...] = ("onnx",)
    modules: Tuple[str, ...] = ("onnxruntime",)
    install_hint = INSTALL_HINT

    def info(self) -> RuntimeInfo:
        try:  # lazy: the server process never maps onnxruntime (~30 MB); the worker imports it
            import onnxruntime as ort
        except Exception as exc:  # ImportError, or a broken wheel raising something else at import
            return unavailable(self.name, exc, INSTALL_HINT)
        return RuntimeInfo(name=self.name, available=True, version=ort.__version__,
                           providers=tuple(ort.get_available_providers()))

    def load(self, model_path: Path, options: RuntimeOptions, threads: int) -> LoadedModel:
        import onnxruntime as ort  # lazy, see info()

        level_name = _OPT_LEVELS.get(options.graph_optimization_level.lower())
        if level_name is None:
            raise ValueError(f"graph_optimization_level {options.graph_optimization_level!r} is not one of "
                             f"{sorted(k for k in _OPT_LEVELS if k)}")
        provider = options.execution_provider or "CPUExecutionProvider"
        available = ort.get_available_providers()
        if provider not in available:
            raise ValueError(f"execution provider {provider!r} is not available in onnxruntime {ort.__version__}; "
                             f"available: {', '.join(available)}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level_name)
        spin = "1" if options.allow_spinning else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        so.add_session_config_entry("session.inter_op.allow_spinning", spin)
        session = ort.InferenceSession(str(model_path), sess_options=so,
                                       providers=[(provider, dict(options.provider_options))])
        inputs = tuple(InputSpec(name=i.name, shape=tuple(dynamic_dim_to_one(d) for d in i.shape),
                                 dtype=_DTYPES.get(i.type, i.type)) for i in session.get_inputs())
        for spec in inputs:
            if spec.dtype not in _DTYPES.values():
                raise ValueError(f"input {spec.name!r} has type {spec.dtype!r}: only tensor inputs can be measured")
        output_names = [o.name for o in session.get_outputs()]

        def bind(feeds):  # functools.partial is a C call: no Python frame inside the timed region
            return functools.partial(session.run, output_names, feeds)

        return LoadedModel(inputs=inputs, bind=bind, execution_provider=session.get_providers()[0],
                           provider_options=tuple(sorted(dict(options.provider_options).items())),
                           intra_op_threads=threads, inter_op_threads=1, allow_spinning=options.allow_spinning,
                           graph_optimization_level=level_name, runtime_version=ort.__version__, handle=session)
