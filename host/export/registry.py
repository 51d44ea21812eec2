"""Exporters by model format: one per format, found in the ``fleetnas.exporters`` registry.

An exporter turns a sub-network of a super-network into one model file an agent's runtime loads::

    class MyExporter:
        format = "pte"          # the format name the agents report for their runtimes (RuntimeInfo.formats)
        suffix = ".pte"         # model files of this format end so
        precisions = ("fp32",)  # numeric precisions it can export: "fp32", "int8"
        def __init__(self, precision: str = "fp32") -> None: ...
        def check(self) -> None: ...                                   # raise ExportError with an install hint
        def export(self, supernet, config, cache_dir) -> ExportedModel: ...

An int8 exporter calibrates on ``supernet.calibration_inputs(config)`` and must key its cache on the precision.

An exporter may also offer ``host_runner(self, exported) -> Callable[[np.ndarray], np.ndarray]``: a function taking
an NCHW float32 batch and returning float32 logits of shape (N, classes), computed by the EXPORTED model on this host
(e.g. ``pte``: ExecuTorch in-process, one sample at a time when the program has a static batch of 1), so accuracy
can be evaluated on the model that is deployed rather than on the torch sub-network.

registered under ``[project.entry-points."fleetnas.exporters"]`` as ``pte = "my_package.export:MyExporter"``.
The search exports candidates in the format the boards report for the chosen runtime; `fleetnas export --format`
offers the names registered here; a model file's format is read from its suffix.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Mapping, Protocol, Sequence, Tuple, Union

from fleetnas.host.errors import UsageError
from fleetnas.host.plugins import Registry

if TYPE_CHECKING:  # the exporters import numpy; listing the formats (CLI start-up) must not
    from fleetnas.host.export.onnx import ExportedModel

EXPORTERS = Registry("fleetnas.exporters", {"onnx": "fleetnas.host.export.onnx_exporter:OnnxExporter",
                                            "tflite": "fleetnas.host.export.tflite:TfliteExporter",
                                            "pte": "fleetnas.host.export.pte:PteExporter"}, "model format")


PRECISIONS = ("fp32", "int8")


class Exporter(Protocol):
    format: str
    suffix: str
    precisions: Tuple[str, ...]

    def check(self) -> None:
        """Raise ExportError (with the install hint) when this host cannot export the format."""

    def export(self, supernet: Any, config: Mapping[str, Any], cache_dir: Union[str, Path]) -> ExportedModel:
        """Export (or fetch from ``cache_dir``) sub-network ``config`` of ``supernet``, verified."""


def get_exporter(model_format: str, precision: str = "fp32") -> Exporter:
    """The exporter of ``model_format`` at ``precision``; a UsageError names the precisions it has otherwise."""
    factory = EXPORTERS.load(model_format)
    precisions = tuple(getattr(factory, "precisions", ("fp32",)))
    if precision not in precisions:
        raise UsageError(f"fleetnas exports {model_format} models in {', '.join(precisions)}, not {precision}; "
                         f"choose --precision {precisions[0]} or another runtime")
    return factory(precision=precision) if precision != "fp32" else factory()


def exporter_for(formats: Sequence[str], runtime: str, precision: str = "fp32") -> Exporter:
    """The exporter for the first of ``formats`` (as the boards list them for ``runtime``) that has one."""
    for name in formats:
        if name in EXPORTERS:
            return get_exporter(name, precision)
    raise UsageError(f"runtime {runtime!r} loads {', '.join(formats) or 'no model format'}; fleetnas exports "
                     f"{', '.join(EXPORTERS.names())} (install a package that registers an exporter for one of them)")


def format_of_file(path: Union[str, Path]) -> str:
    """A model file's format, from its suffix and the registered exporters' suffixes."""
    suffix = Path(path).suffix.lower()
    suffixes: List[str] = []
    for name in EXPORTERS.names():
        exporter = get_exporter(name)
        if exporter.suffix == suffix:
            return exporter.format
        suffixes.append(exporter.suffix)
    raise UsageError(f"{path}: unknown model type; fleetnas measures {', '.join(suffixes)} files")
