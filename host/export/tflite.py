"""TFLite export through litert-torch (the optional ``[tflite-export]`` extra), verified in the LiteRT interpreter.

int8 (``--precision int8``): PT2E static quantization (litert-torch's symmetric per-channel quantizer, activation
ranges observed on ``supernet.calibration_inputs``), converted to a fully int8 flatbuffer (int8 input and output
too), verified against the float network as the int8 ONNX export is (fleetnas.host.export.onnx_int8).

litert-torch pulls jax, transformers and pins older pydantic/typing_extensions, so it is not part of ``[host]``; when
it is missing the error says how to install it. Same cache and record as ONNX (``ExportedModel``).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Tuple, Union

import numpy as np

from fleetnas.host.export.onnx import (VERIFY_TOLERANCE, ExportedModel, ExportError, _as_tuple, _read_cached,
                                       cache_name, max_error, store)
from fleetnas.host.export.onnx_int8 import calibration_samples, compare_int8

INSTALL_HINT = ("TFLite export needs the litert-torch converter: pip install 'fleetnas[tflite-export]' "
                "(it brings jax and transformers, so a separate virtualenv with --system-site-packages keeps the "
                "host's packages as they are)")


def _converter():
    try:
        import litert_torch
    except ImportError:
        raise ExportError(INSTALL_HINT) from None
    return litert_torch


def verify_tflite(data: bytes, module, inputs, tolerance: float = VERIFY_TOLERANCE) -> float:
    """Run the flatbuffer in LiteRT's interpreter; return the max error vs torch, raise ExportError above tolerance."""
    import torch

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ExportError("verifying a TFLite export needs LiteRT: pip install 'fleetnas[litert]'") from None
    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    for detail, tensor in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], tensor.numpy())
    interpreter.invoke()
    outs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    with torch.no_grad():
        reference = [t.numpy() for t in _as_tuple(module(*inputs))]
    error = max_error(reference, outs)
    if error > tolerance:
        raise ExportError(f"TFLite output differs from torch by {error:.2e} (tolerance {tolerance:.0e})")
    return error


def export_tflite(supernet, config: Mapping[str, Any], cache_dir: Union[str, Path],
                  verify: bool = True) -> ExportedModel:
    """Export (or fetch from ``cache_dir``) the sub-network ``config`` of ``supernet`` as a ``.tflite`` file."""
    litert_torch = _converter()
    config_key = supernet.key(config)
    path = Path(cache_dir) / cache_name(supernet, config_key, "tflite", f"litert-torch-{litert_torch.__version__}"
                                        if hasattr(litert_torch, "__version__") else "litert-torch")
    cached = _read_cached(path, "tflite", supernet, config_key)
    if cached is not None:
        return cached
    module = supernet.extract(config)
    inputs = _as_tuple(supernet.example_input(config))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = bytes(litert_torch.convert(module, inputs).model_content())
    except Exception as exc:  # the converter raises many types; the user needs which network failed
        raise ExportError(f"TFLite conversion of {supernet.name} {config_key} failed: {type(exc).__name__}: {exc}") \
            from exc
    error = verify_tflite(data, module, inputs) if verify else float("nan")
    return store(path, data, "tflite", supernet, config_key, error)


def _quantize_pt2e(litert_torch, supernet, config: Mapping[str, Any], module, inputs) -> Tuple[bytes, list]:
    """(int8 flatbuffer, held-back verification inputs)."""
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    calibration, held_back = calibration_samples(supernet, config)
    graph = torch.export.export(module, inputs).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for sample in calibration:
            graph(*sample)
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
    model = litert_torch.convert(graph, inputs, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    return bytes(model.model_content()), held_back


def export_tflite_int8(supernet, config: Mapping[str, Any], cache_dir: Union[str, Path],
                       verify: bool = True) -> ExportedModel:
    """Export (or fetch from ``cache_dir``) sub-network ``config`` of ``supernet`` as an int8 ``.tflite`` file."""
    litert_torch = _converter()
    config_key = supernet.key(config)
    version = getattr(litert_torch, "__version__", "")
    path = Path(cache_dir) / cache_name(supernet, config_key, "tflite", f"litert-torch-{version}-int8-pt2e")
    cached = _read_cached(path, "tflite", supernet, config_key, "int8")
    if cached is not None:
        return cached
    module = supernet.extract(config)
    inputs = _as_tuple(supernet.example_input(config))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, held_back = _quantize_pt2e(litert_torch, supernet, config, module, inputs)
    except Exception as exc:  # the quantizer and converter raise many types; the user needs which network failed
        raise ExportError(f"int8 TFLite conversion of {supernet.name} {config_key} failed: {type(exc).__name__}: "
                          f"{exc}") from exc
    error = float("nan")
    if verify:
        run = tflite_runner(data)
        error = compare_int8(lambda sample: run(sample[0].numpy()), module, held_back, "int8 TFLite")
    return store(path, data, "tflite", supernet, config_key, error, precision="int8")


def tflite_runner(model: Union[str, Path, bytes], threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """``run(batch) -> logits`` over a .tflite model in the LiteRT interpreter, one sample at a time (the model was
    converted for batch 1, as it is measured)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ExportError("running a TFLite model on the host needs LiteRT: pip install 'fleetnas[litert]'") from None
    interpreter = (Interpreter(model_content=model, num_threads=threads) if isinstance(model, bytes)
                   else Interpreter(model_path=str(model), num_threads=threads))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()

    def quantize(x: np.ndarray, detail) -> np.ndarray:   # an int8 model with int8 input takes quantized values
        scale, zero = detail.get("quantization", (0.0, 0))
        if detail["dtype"] == np.float32 or not scale:
            return x.astype(detail["dtype"])
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])

    def run(batch: np.ndarray) -> np.ndarray:
        logits = []
        for sample in np.asarray(batch, dtype=np.float32):
            interpreter.set_tensor(inp["index"], quantize(sample[None], inp))
            interpreter.invoke()
            y = interpreter.get_tensor(out["index"])
            scale, zero = out.get("quantization", (0.0, 0))
            logits.append((y.astype(np.float32) - zero) * scale if y.dtype != np.float32 and scale else y)
        return np.concatenate(logits).astype(np.float32)
    return run


class TfliteExporter:
    """The ``tflite`` entry of the exporter registry (fleetnas.host.export.registry)."""
    format = "tflite"
    suffix = ".tflite"
    precisions = ("fp32", "int8")

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision

    def check(self) -> None:
        _converter()

    def export(self, supernet, config: Mapping[str, Any], cache_dir: Union[str, Path]) -> ExportedModel:
        if self.precision == "int8":
            return export_tflite_int8(supernet, config, cache_dir)
        return export_tflite(supernet, config, cache_dir)

    def host_runner(self, exported: ExportedModel) -> Callable[[np.ndarray], np.ndarray]:
        """The exported model in LiteRT's interpreter on this host: NCHW float32 batch -> logits (N, classes)."""
        return tflite_runner(exported.path)
