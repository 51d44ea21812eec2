"""ExecuTorch export (the optional ``[executorch]`` extra): ``torch.export`` -> edge dialect lowered to the XNNPACK
delegate -> one ``.pte`` program, verified in ExecuTorch's own runtime on this host, cached like ONNX.

fp32 is checked against torch to ``VERIFY_TOLERANCE``. int8 is PT2E static quantization with the XNNPACK quantizer
(symmetric, per-channel weights), calibrated on ``supernet.calibration_inputs(config)``; it cannot match torch's
float output closely, so it is checked for what deployment needs: a bounded relative error and the same top-1 class
on the calibration inputs (up to ties within the quantization noise). The same configuration gives the same bytes (same sha256), so measurements cache.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, List, Mapping, Tuple, Union

import numpy as np

from fleetnas.host.export.onnx import (VERIFY_TOLERANCE, ExportedModel, ExportError, _as_tuple, _read_cached,
                                       cache_name, max_error, store)

INSTALL_HINT = ("ExecuTorch export needs executorch on this host: pip install 'fleetnas[executorch]' "
                "(install torch==2.13.0 first so nothing replaces it)")
INT8_MAX_RELATIVE_ERROR = 0.35    # ||int8 - fp32|| / ||fp32|| over the calibration inputs
INT8_MIN_TOP1_AGREEMENT = 0.75    # share of calibration inputs whose top-1 class int8 keeps


def executorch_version() -> str:
    """The installed executorch version; ExportError with the install hint when it is missing."""
    try:
        from importlib import metadata

        import executorch  # noqa: F401  (the import itself is the check: a broken install fails here)
        return metadata.version("executorch")
    except ImportError:
        raise ExportError(INSTALL_HINT) from None


@contextlib.contextmanager
def _quiet_import():
    """Importing executorch pulls torchao, which logs a warning per GPU kernel library a CPU host cannot load, and
    torch, which logs a deprecation about one of torchao's enums: noise for a user who only exports for CPUs."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _quantized_program(module, inputs: Tuple[Any, ...], calibration: List[Any]):
    """``module`` quantized to int8 for XNNPACK (PT2E), re-exported: what the lowering takes."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(module, inputs).module(), quantizer)
    for sample in calibration:
        prepared(*_as_tuple(sample))
    return torch.export.export(convert_pt2e(prepared), inputs)


def pte_bytes(supernet, config: Mapping[str, Any], precision: str = "fp32") -> Tuple[bytes, Any, Tuple[Any, ...]]:
    """(serialised .pte program, extracted torch module, example inputs)."""
    import torch
    with _quiet_import():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.backends.xnnpack.quantizer import xnnpack_quantizer  # noqa: F401  (imports torchao)
        from executorch.exir import to_edge_transform_and_lower

    module = supernet.extract(config).eval()
    inputs = _as_tuple(supernet.example_input(config))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if precision == "int8":
            program = _quantized_program(module, inputs, supernet.calibration_inputs(config))
        else:
            program = torch.export.export(module, inputs)
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    return bytes(lowered.buffer), module, inputs


def load_forward(program: Union[bytes, Path]):
    """The ``forward`` method of a .pte program in ExecuTorch's runtime (in this process)."""
    with _quiet_import():
        from executorch.runtime import Runtime

    return Runtime.get().load_program(program).load_method("forward")


def _run(method, inputs: Tuple[Any, ...]) -> List[np.ndarray]:
    return [t.detach().numpy() for t in method.execute(list(inputs))]


def verify_pte(data: bytes, module, inputs: Tuple[Any, ...], precision: str, calibration: List[Any]) -> float:
    """Run the program in ExecuTorch on the host; return the error vs torch (fp32: max, scaled as for ONNX; int8:
    relative L2 over the calibration inputs) and raise ExportError when it is out of bounds."""
    import torch

    method = load_forward(data)
    if precision != "int8":
        with torch.no_grad():
            reference = [t.numpy() for t in _as_tuple(module(*inputs))]
        error = max_error(reference, _run(method, inputs))
        if error > VERIFY_TOLERANCE:
            raise ExportError(f"ExecuTorch output differs from torch by {error:.2e} "
                              f"(tolerance {VERIFY_TOLERANCE:.0e})")
        return error
    ref_rows, out_rows = [], []
    for sample in calibration or [inputs]:
        sample = _as_tuple(sample)
        with torch.no_grad():
            ref_rows.append(_as_tuple(module(*sample))[0].numpy().reshape(1, -1))
        out_rows.append(_run(method, sample)[0].reshape(1, -1))
    ref, out = np.concatenate(ref_rows).astype(np.float64), np.concatenate(out_rows).astype(np.float64)
    error = float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-12))
    # int8's pick agrees when torch scores it within this sample's int8 error of torch's best: classes closer than
    # the quantization noise (near-flat logits, e.g. random weights) cannot be told apart by either model
    picked = ref[np.arange(len(ref)), out.argmax(axis=1)]
    noise = np.abs(out - ref).max(axis=1)
    agreement = float(np.mean(picked >= ref.max(axis=1) - noise))
    if error > INT8_MAX_RELATIVE_ERROR or agreement < INT8_MIN_TOP1_AGREEMENT:
        raise ExportError(f"int8 ExecuTorch output strays from torch: relative error {error:.3f} (at most "
                          f"{INT8_MAX_RELATIVE_ERROR}), top-1 agreement {agreement:.0%} (at least "
                          f"{INT8_MIN_TOP1_AGREEMENT:.0%}) on {len(ref)} calibration inputs; export fp32 instead")
    return error


def export_pte(supernet, config: Mapping[str, Any], cache_dir: Union[str, Path], precision: str = "fp32",
               verify: bool = True) -> ExportedModel:
    """Export (or fetch from ``cache_dir``) the sub-network ``config`` of ``supernet`` as a ``.pte`` program."""
    version = executorch_version()
    config_key = supernet.key(config)
    path = Path(cache_dir) / cache_name(supernet, config_key, "pte", f"executorch-{version}-xnnpack-{precision}")
    cached = _read_cached(path, "pte", supernet, config_key, precision)
    if cached is not None:
        return cached
    try:
        data, module, inputs = pte_bytes(supernet, config, precision)
    except ExportError:
        raise
    except Exception as exc:  # torch.export and the lowering raise many types; the user needs which network failed
        raise ExportError(f"ExecuTorch {precision} export of {supernet.name} {config_key} failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    calibration = supernet.calibration_inputs(config) if precision == "int8" else []
    error = verify_pte(data, module, inputs, precision, calibration) if verify else float("nan")
    return store(path, data, "pte", supernet, config_key, error, precision=precision)


class PteExporter:
    """The ``pte`` entry of the exporter registry (fleetnas.host.export.registry): ExecuTorch with XNNPACK."""
    format = "pte"
    suffix = ".pte"
    precisions = ("fp32", "int8")

    def __init__(self, precision: str = "fp32") -> None:
        if precision not in self.precisions:
            raise ExportError(f"ExecuTorch export offers {', '.join(self.precisions)}, not {precision!r}")
        self.precision = precision

    def check(self) -> None:
        executorch_version()

    def export(self, supernet, config: Mapping[str, Any], cache_dir: Union[str, Path]) -> ExportedModel:
        return export_pte(supernet, config, cache_dir, self.precision)

    def host_runner(self, exported: ExportedModel) -> Callable[[np.ndarray], np.ndarray]:
        """Run the exported program on this host: NCHW float32 batch in, float32 logits (N, classes) out. A program
        exported with a static batch of 1 (as the search exports) is run one sample at a time."""
        import torch

        self.check()
        method = load_forward(Path(exported.path))
        batch = int(method.metadata.input_tensor_meta(0).sizes()[0])

        def run(images: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
            if batch == x.shape[0]:
                return _run(method, (x,))[0].astype(np.float32)
            if batch != 1:
                raise ExportError(f"{exported.path} has a static batch of {batch}; give it batches of {batch} "
                                  f"(or 1 sample at a time), not {x.shape[0]}")
            return np.concatenate([_run(method, (x[i:i + 1],))[0] for i in range(x.shape[0])]).astype(np.float32)

        return run
