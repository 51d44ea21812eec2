"""ONNX export of sub-networks: one self-contained file, verified against torch, deterministic, cached.

``export_onnx(supernet, config, cache_dir) -> ExportedModel`` is what the host controller calls. The cache file name
is a hash of (super-network, weights identity, canonical config, opset), so a repeated request is a file read.
The same inputs give the same bytes (hence the same sha256, which the agent and the measurement cache key on):
weights are fixed by the checkpoint or a seeded initialisation, and the TorchScript-based exporter names nodes and
initialisers deterministically. The model's ``metadata_props`` carry ``fleetnas.supernet`` and ``fleetnas.config``
(canonical JSON), so an emulating agent can tell which sub-network it was handed.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from fleetnas.host.errors import FleetnasError

DEFAULT_OPSET = 17
VERIFY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportedModel:
    path: Path
    sha256: str
    size_bytes: int
    format: str          # "onnx" | "tflite"
    config_key: str      # canonical JSON of the configuration
    supernet: str
    max_abs_error: float  # largest |runtime - torch| over the outputs at verification (int8: mean relative error)
    cache_hit: bool = False
    precision: str = "fp32"  # "fp32" | "int8" (weights and activations quantized)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


class ExportError(FleetnasError):
    """Export or its verification failed; the message names the sub-network and the mismatch."""


def _as_tuple(inputs: Any) -> Tuple[Any, ...]:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def cache_name(supernet, config_key: str, fmt: str, extra: str = "") -> str:
    digest = hashlib.sha256("\n".join([supernet.name, supernet.weights_id, config_key, extra]).encode()).hexdigest()
    return f"{supernet.name}-{digest[:20]}.{fmt}"


def _read_cached(path: Path, fmt: str, supernet, config_key: str, precision: str = "fp32") -> Optional[ExportedModel]:
    meta_path = path.with_suffix(path.suffix + ".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None  # torn or edited file: export again
    return ExportedModel(path, meta["sha256"], len(data), fmt, config_key, supernet.name,
                         float(meta.get("max_abs_error", 0.0)), cache_hit=True,
                         precision=meta.get("precision", precision))


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a concurrent reader never sees half a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def store(path: Path, data: bytes, fmt: str, supernet, config_key: str, max_abs_error: float,
          precision: str = "fp32") -> ExportedModel:
    sha = hashlib.sha256(data).hexdigest()
    write_atomic(path, data)
    write_atomic(path.with_suffix(path.suffix + ".json"), json.dumps(
        {"sha256": sha, "supernet": supernet.name, "config": json.loads(config_key), "precision": precision,
         "weights": supernet.weights_id, "max_abs_error": max_abs_error}, sort_keys=True).encode())
    return ExportedModel(path, sha, len(data), fmt, config_key, supernet.name, max_abs_error, precision=precision)


def max_error(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Largest absolute difference, relative to the output scale when that exceeds 1 (big logits of random nets)."""
    worst = 0.0
    for ref, out in zip(reference, outputs):
        if ref.shape != out.shape:
            raise ExportError(f"output shape {out.shape} differs from torch's {ref.shape}")
        scale = max(1.0, float(np.abs(ref).max()))
        worst = max(worst, float(np.abs(ref.astype(np.float64) - out).max()) / scale)
    return worst


def onnx_bytes(supernet, config: Mapping[str, Any], opset: int = DEFAULT_OPSET) -> Tuple[bytes, Any, Any]:
    """(serialised model, extracted module, example inputs); metadata_props set, no external data."""
    import onnx
    import torch

    module = supernet.extract(config)
    inputs = _as_tuple(supernet.example_input(config))
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, buf, opset_version=opset, dynamo=False, do_constant_folding=True,
                          input_names=list(supernet.input_names), output_names=list(supernet.output_names))
    model = onnx.load_from_string(buf.getvalue())
    model.producer_name, model.producer_version = "fleetnas", "1"
    del model.metadata_props[:]
    for key, value in (("fleetnas.supernet", supernet.name), ("fleetnas.config", supernet.key(config))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString(), module, inputs


def verify_onnx(data: bytes, module, inputs: Tuple[Any, ...], tolerance: float = VERIFY_TOLERANCE) -> float:
    """Run the model in onnxruntime on ``inputs``; return the max error vs torch, raise ExportError above tolerance."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    with torch.no_grad():
        reference = [t.numpy() for t in _as_tuple(module(*inputs))]
    error = max_error(reference, session.run(None, feeds))
    if error > tolerance:
        raise ExportError(f"ONNX output differs from torch by {error:.2e} (tolerance {tolerance:.0e})")
    return error


def export_onnx(supernet, config: Mapping[str, Any], cache_dir: Union[str, Path],
                opset: int = DEFAULT_OPSET, verify: bool = True) -> ExportedModel:
    """Export (or fetch from ``cache_dir``) the sub-network ``config`` of ``supernet`` as a single ONNX file."""
    if opset < 17:
        raise ExportError(f"opset {opset} is too old; use 17 or newer")
    config_key = supernet.key(config)
    path = Path(cache_dir) / cache_name(supernet, config_key, "onnx", f"opset{opset}")
    cached = _read_cached(path, "onnx", supernet, config_key)
    if cached is not None:
        return cached
    try:
        data, module, inputs = onnx_bytes(supernet, config, opset)
    except FleetnasError:
        raise
    except Exception as exc:  # torch.onnx / onnx.checker raise many types; the user needs which network failed
        raise ExportError(f"ONNX export of {supernet.name} {config_key} failed: {type(exc).__name__}: {exc}") from exc
    error = verify_onnx(data, module, inputs) if verify else float("nan")
    return store(path, data, "onnx", supernet, config_key, error)


def onnx_runner(model: Union[str, Path, bytes], threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """``run(batch) -> logits`` over an ONNX model in onnxruntime; a model exported for batch 1 is run per sample."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3   # errors only: the quantized graph's unused-initializer notices are noise
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                   providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    step = first.shape[0] if isinstance(first.shape[0], int) and first.shape[0] > 0 else None

    def run(batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        chunks = [batch] if step is None else [batch[i:i + step] for i in range(0, len(batch), step)]
        return np.concatenate([session.run(None, {first.name: c})[0] for c in chunks])
    return run
