"""The exporter registry: one exporter per model format, each with its suffix; formats come from it, not a table."""
import numpy as np
import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.export.registry import EXPORTERS, exporter_for, format_of_file, get_exporter
from fleetnas.host.supernets import get_supernet


def test_built_in_exporters_declare_format_and_suffix():
    assert {"onnx", "tflite", "pte"} <= set(EXPORTERS.names())
    for name in EXPORTERS.names():
        exporter = get_exporter(name)
        assert exporter.format == name and exporter.suffix.startswith(".")
        assert format_of_file(f"model{exporter.suffix.upper()}") == name


def test_the_first_format_the_boards_list_with_an_exporter_is_used():
    assert exporter_for(("xmodel", "tflite", "onnx"), "some-runtime").format == "tflite"
    with pytest.raises(UsageError, match="runtime 'vendor-npu' loads xmodel; fleetnas exports onnx, pte, tflite"):
        exporter_for(("xmodel",), "vendor-npu")


def test_unknown_model_file_names_the_suffixes_it_knows():
    with pytest.raises(UsageError, match=r"model.pt: unknown model type; fleetnas measures .onnx, .pte, .tflite files"):
        format_of_file("model.pt")


def test_onnx_exporter_exports_through_the_registry(tmp_path):
    tiny = get_supernet("tiny")
    config = tiny.space.sample(np.random.default_rng(0))
    exported = get_exporter("onnx").export(tiny, config, tmp_path)
    assert exported.path.suffix == ".onnx" and exported.format == "onnx" and exported.size_bytes > 0


def test_export_command_offers_the_registered_formats(capsys):
    from fleetnas.host.cli import main
    with pytest.raises(SystemExit):
        main(["export", "--supernet", "tiny", "--config", "random", "--format", "xmodel", "--out", "x.xmodel"])
    assert "invalid choice: 'xmodel' (choose from" in capsys.readouterr().err
