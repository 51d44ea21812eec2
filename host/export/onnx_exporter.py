"""The ``onnx`` exporter of the registry: float (fleetnas.host.export.onnx) or int8 (fleetnas.host.export.onnx_int8)
ONNX files, and the exported file run in onnxruntime on the host."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Union

import numpy as np

from fleetnas.host.export.onnx import ExportedModel, export_onnx, onnx_runner
from fleetnas.host.export.onnx_int8 import export_onnx_int8


class OnnxExporter:
    """The ``onnx`` entry of the exporter registry (fleetnas.host.export.registry)."""
    format = "onnx"
    suffix = ".onnx"
    precisions = ("fp32", "int8")

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision

    def check(self) -> None:
        """torch, onnx and onnxruntime (its quantizer too) come with fleetnas[host]: nothing to check."""

    def export(self, supernet, config: Mapping[str, Any], cache_dir: Union[str, Path]) -> ExportedModel:
        if self.precision == "int8":
            return export_onnx_int8(supernet, config, cache_dir)
        return export_onnx(supernet, config, cache_dir)

    def host_runner(self, exported: ExportedModel) -> Callable[[np.ndarray], np.ndarray]:
        """The exported model in onnxruntime on this host: NCHW float32 batch -> logits (N, classes)."""
        return onnx_runner(exported.path)
