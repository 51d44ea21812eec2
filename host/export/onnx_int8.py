"""int8 ONNX export: QDQ static quantization of the float export, calibrated on real inputs, verified, cached.

Most edge deployments run int8, and an int8 model's accuracy and latency differ from its float network's, so a
search of int8 deployments must evaluate the quantized file itself. Here: the verified float export
(fleetnas.host.export.onnx) goes through onnxruntime's ``quantize_static`` in the QDQ format (QuantizeLinear /
DequantizeLinear pairs every runtime understands), int8 weights per output channel and int8 activations whose ranges
come from MinMax calibration over ``supernet.calibration_inputs(config)`` (training samples where the super-network
has data). The same inputs give the same bytes, so the sha256 the measurement cache keys on is stable; the cache file
name includes the precision and the onnxruntime version (the quantizer's output may change between versions).

Verification against the float torch sub-network cannot ask for 1e-4 as the float export does: it checks that the
quantized logits stay within ``INT8_TOLERANCE`` of the float ones (relative L2 error, averaged over inputs) and that the top-1 class
agrees on at least ``MIN_TOP1_AGREEMENT`` of the held-back inputs where the float prediction is clear. A model whose
quantization went wrong (a broken scale, a wrong graph) fails both.
"""
from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from fleetnas.host.errors import FleetnasError
from fleetnas.host.export.onnx import (DEFAULT_OPSET, ExportedModel, ExportError, _as_tuple, _read_cached,
                                       cache_name, onnx_bytes, onnx_runner, store, verify_onnx)

# inputs the activation ranges are fitted on: with 8, held-back inputs fell outside the ranges (clipped) and the
# logits' relative error reached 0.3 on tiny; 32 kept it below 0.05 (export time hardly changes)
CALIBRATION_COUNT = 32
VERIFY_COUNT = 16          # further inputs, held back from calibration, the verification compares on
INT8_TOLERANCE = 0.25      # mean over inputs of |int8 - float| / |float| (L2 norms of the logits)
MIN_TOP1_AGREEMENT = 0.75  # of the inputs whose float top-1 is clear
CLEAR_MARGIN = 0.1         # "clear": top-1 logit exceeds the runner-up by this fraction of the logits' range


class _DropAdvice(logging.Filter):
    """The quantizer's notices on the root logger (advice to pre-process, biases left in float): the verification
    below is what tells a user whether the model is right."""
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _reader(input_names: Sequence[str], samples: Sequence[Tuple[Any, ...]]):
    """An onnxruntime CalibrationDataReader over ``samples`` (tuples of torch tensors, batch 1)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[dict] = iter([{n: t.numpy() for n, t in zip(input_names, s)} for s in samples])

        def get_next(self) -> Optional[dict]:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter([{n: t.numpy() for n, t in zip(input_names, s)} for s in samples])

    return Reader()


def quantize_qdq(fp32_model: bytes, input_names: Sequence[str], samples: Sequence[Tuple[Any, ...]],
                 supernet_name: str = "", config_key: str = "") -> bytes:
    """QDQ int8 (per-channel weights, int8 activations, MinMax ranges over ``samples``) of a float ONNX model."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    # the quantizer advises pre-processing on the root logger at every call (our float export is already folded)
    advice = _DropAdvice()
    logging.getLogger().addFilter(advice)
    with tempfile.TemporaryDirectory(prefix="fleetnas-int8-") as tmp, warnings.catch_warnings():
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32_model)
        warnings.simplefilter("ignore")
        try:
            quantize_static(str(src), str(dst), _reader(input_names, samples), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().removeFilter(advice)
        model = onnx.load(str(dst))
    # the float model's identity travels with the quantized one, plus its precision (an agent can tell them apart)
    del model.metadata_props[:]
    for key, value in (("fleetnas.supernet", supernet_name), ("fleetnas.config", config_key),
                       ("fleetnas.precision", "int8")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name, model.producer_version = "fleetnas", "1"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def compare_int8(run_sample: Callable[[Tuple[Any, ...]], np.ndarray], module, samples: Sequence[Tuple[Any, ...]],
                 what: str, tolerance: float = INT8_TOLERANCE, min_agreement: float = MIN_TOP1_AGREEMENT) -> float:
    """Compare an int8 model (``run_sample(inputs) -> logits``) with the float torch module on ``samples``; return the
    mean relative error. Raises ExportError when it exceeds ``tolerance`` or the top-1 agreement on clearly-predicted
    samples is below ``min_agreement``. ``what`` names the model in the message ("int8 ONNX")."""
    import torch

    errors, clear, agree = [], 0, 0
    for sample in samples:
        with torch.no_grad():
            ref = _as_tuple(module(*sample))[0].numpy().astype(np.float64).reshape(-1)
        out = np.asarray(run_sample(sample), dtype=np.float64).reshape(-1)
        if out.shape != ref.shape:
            raise ExportError(f"{what} output has {out.size} values, the float network {ref.size}")
        errors.append(float(np.linalg.norm(out - ref) / max(float(np.linalg.norm(ref)), 1e-12)))
        if ref.size >= 2:
            top2 = np.sort(ref)[-2:]
            if top2[1] - top2[0] > CLEAR_MARGIN * max(float(ref.max() - ref.min()), 1e-12):
                clear += 1
                agree += int(ref.argmax() == out.argmax())
    worst = float(np.mean(errors)) if errors else 0.0
    if not np.isfinite(worst) or worst > tolerance:
        raise ExportError(f"{what} output differs from the float network by {worst:.2f} of the logits' norm "
                          f"(tolerance {tolerance}): the quantization lost the model")
    if clear and agree / clear < min_agreement:
        raise ExportError(f"{what} model agrees with the float network's top-1 on {agree} of {clear} clearly "
                          f"predicted inputs (at least {min_agreement:.0%} needed): the quantization lost the model")
    return worst


def verify_int8(data: bytes, module, samples: Sequence[Tuple[Any, ...]], tolerance: float = INT8_TOLERANCE,
                min_agreement: float = MIN_TOP1_AGREEMENT) -> float:
    """``compare_int8`` for a quantized ONNX model (bytes) run in onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3   # errors only: the quantized graph's unused-initializer notices are noise
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return compare_int8(lambda sample: session.run(None, {n: t.numpy() for n, t in zip(names, sample)})[0],
                        module, samples, "int8 ONNX", tolerance, min_agreement)


def calibration_samples(supernet, config: Mapping[str, Any]) -> Tuple[List[Tuple[Any, ...]], List[Tuple[Any, ...]]]:
    """(calibration, verification) inputs: the first CALIBRATION_COUNT calibrate, the rest verify."""
    inputs = [_as_tuple(x) for x in supernet.calibration_inputs(config, count=CALIBRATION_COUNT + VERIFY_COUNT)]
    if len(inputs) <= CALIBRATION_COUNT:   # a super-network with few samples: verify on what there is
        return inputs, inputs
    return inputs[:CALIBRATION_COUNT], inputs[CALIBRATION_COUNT:]


def export_onnx_int8(supernet, config: Mapping[str, Any], cache_dir: Union[str, Path],
                     opset: int = DEFAULT_OPSET, verify: bool = True) -> ExportedModel:
    """Export (or fetch from ``cache_dir``) sub-network ``config`` of ``supernet`` as a QDQ int8 ONNX file."""
    import onnxruntime as ort

    config_key = supernet.key(config)
    path = Path(cache_dir) / cache_name(supernet, config_key, "onnx", f"opset{opset}-int8-qdq-ort{ort.__version__}")
    cached = _read_cached(path, "onnx", supernet, config_key, "int8")
    if cached is not None:
        return cached
    try:
        fp32, module, inputs = onnx_bytes(supernet, config, opset)
        verify_onnx(fp32, module, inputs)   # quantizing a float export that is already wrong would hide why
        calibration, held_back = calibration_samples(supernet, config)
        data = quantize_qdq(fp32, list(supernet.input_names), calibration, supernet.name, config_key)
    except FleetnasError:
        raise
    except Exception as exc:  # torch.onnx / the quantizer raise many types; the user needs which network failed
        raise ExportError(f"int8 ONNX export of {supernet.name} {config_key} failed: {type(exc).__name__}: "
                          f"{exc}") from exc
    error = verify_int8(data, module, held_back) if verify else float("nan")
    return store(path, data, "onnx", supernet, config_key, error, precision="int8")


__all__ = ["export_onnx_int8", "quantize_qdq", "verify_int8", "compare_int8", "calibration_samples", "onnx_runner",
           "INT8_TOLERANCE"]
