"""Accuracy of the model that ships: with ``--precision int8`` the quantized file is evaluated, not the float network.

An int8 model's accuracy differs from its float network's, and not by the same amount for every sub-network, so a
front ranked by float accuracy can differ from the front of the models deployed. ``DeployedEvaluator`` runs the
exported model on the host through its exporter's ``host_runner`` (onnxruntime for ONNX, the LiteRT interpreter for
.tflite) over the super-network's validation batches, the same data the float accuracy is evaluated on. The exported
model must carry what the float evaluation does to the network: tiny bakes its batch-norm recalibration in at
extraction; the OFA super-networks recalibrate only inside their float evaluator, so their exported (and int8) models
keep the checkpoint's statistics and their int8 accuracy also reflects that difference. An exporter without a host runner gets the int8 ONNX model of the same sub-network evaluated in its
place, and the record says it was a proxy.

With ``fp32`` the float accuracy is the deployed one (the float export is verified to match torch to 1e-4).
Results go to the accuracy cache keyed by the evaluated model's sha256, so a repeated model is evaluated once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import numpy as np

from fleetnas.host.errors import UsageError
from fleetnas.host.store.journal import FLOAT_MODEL

PROXY_SUFFIX = "-proxy"


@dataclass(frozen=True)
class DeployedAccuracy:
    accuracy: float                  # the search's objective: the deployed model's accuracy
    float_accuracy: float            # the float network's (torch)
    int8_accuracy: Optional[float]   # the int8 model's (None at fp32)
    accuracy_model: str              # which model ``accuracy`` is of: FLOAT_MODEL, "onnx-int8", "onnx-int8-proxy"...

    @property
    def drop(self) -> Optional[float]:
        """float - int8 accuracy (positive: quantization cost accuracy)."""
        return None if self.int8_accuracy is None else self.float_accuracy - self.int8_accuracy


def model_accuracy(run: Callable[[np.ndarray], np.ndarray], batches: Iterable[Tuple[Any, Any]]) -> float:
    """Top-1 accuracy of ``run(images) -> logits`` over (images, labels) batches (numpy or torch)."""
    correct = total = 0
    for images, labels in batches:
        images = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
        labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
        logits = np.asarray(run(images.astype(np.float32, copy=False)))
        correct += int((logits.reshape(len(labels), -1).argmax(1) == labels).sum())
        total += int(len(labels))
    if total == 0:
        raise UsageError("the validation data yielded no batches")
    return correct / total


class DeployedEvaluator:
    """``evaluate(config, float_accuracy, exported, exporter)`` -> DeployedAccuracy for one sub-network.

    ``proxy_dir``: where the int8 ONNX stand-in is exported for exporters without a host runner."""

    def __init__(self, supernet, precision: str = "fp32", data: Any = None,
                 proxy_dir: Optional[Path] = None) -> None:
        self.supernet = supernet
        self.precision = precision
        self.data = data
        self.proxy_dir = Path(proxy_dir) if proxy_dir is not None else None

    def _runner(self, config: Dict[str, Any], exported, exporter):
        """(run, model name, sha256 of the model evaluated)."""
        if callable(getattr(exporter, "host_runner", None)):
            return exporter.host_runner(exported), f"{exported.format}-{exported.precision}", exported.sha256
        from fleetnas.host.export.onnx_exporter import OnnxExporter

        proxy = OnnxExporter(precision=self.precision)
        stand_in = proxy.export(self.supernet, config, self.proxy_dir or Path(exported.path).parent)
        return proxy.host_runner(stand_in), f"onnx-{self.precision}{PROXY_SUFFIX}", stand_in.sha256

    def evaluate(self, config: Dict[str, Any], float_accuracy: float, exported, exporter, *,
                 cache=None, accuracy_id: str = "") -> DeployedAccuracy:
        if self.precision == "fp32":
            return DeployedAccuracy(float_accuracy, float_accuracy, None, FLOAT_MODEL)
        run, model_name, sha256 = self._runner(config, exported, exporter)
        cache_id = f"{accuracy_id}|model:{sha256}"
        key = self.supernet.key(config)
        accuracy = cache.lookup(self.supernet.name, cache_id, key) if cache is not None else None
        if accuracy is None:
            accuracy = model_accuracy(run, self.supernet.validation_batches(config, self.data))
            if cache is not None:
                cache.add(self.supernet.name, cache_id, key, accuracy)
        return DeployedAccuracy(float(accuracy), float(float_accuracy), float(accuracy), model_name)
