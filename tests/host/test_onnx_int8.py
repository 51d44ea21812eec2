"""int8 ONNX export: QDQ-quantized, verified against the float network, deterministic, cached apart from fp32."""
from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.export.onnx import ExportError, export_onnx, onnx_bytes
from fleetnas.host.export.onnx_int8 import CALIBRATION_COUNT, export_onnx_int8, quantize_qdq, verify_int8
from fleetnas.host.export.registry import get_exporter
from fleetnas.host.supernets import get_supernet
from fleetnas.host.supernets.tiny import prepare_images

CONFIG = {"res": 16, "w_0": 24, "d_0": 1, "k_0": 3, "w_1": 48, "d_1": 2, "k_1": 5, "w_2": 64, "d_2": 1, "k_2": 3}


@pytest.fixture(scope="module")
def tiny():
    return get_supernet("tiny")


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    return export_onnx_int8(tiny, CONFIG, tmp_path_factory.mktemp("int8"))


def test_int8_export_is_quantized_verified_and_labelled(tiny, exported, tmp_path):
    data = exported.path.read_bytes()
    assert exported.precision == "int8" and exported.format == "onnx" and not exported.cache_hit
    assert exported.sha256 == hashlib.sha256(data).hexdigest()
    model = onnx.load_from_string(data)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert int8_weights and any(len(i.dims) == 4 for i in int8_weights)     # conv weights stored as int8
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {"fleetnas.supernet": "tiny", "fleetnas.config": tiny.key(CONFIG), "fleetnas.precision": "int8"}
    assert 0 <= exported.max_abs_error <= 0.25
    fp32 = export_onnx(tiny, CONFIG, tmp_path)
    assert exported.size_bytes < fp32.size_bytes and exported.sha256 != fp32.sha256


def test_int8_export_is_deterministic_and_cached_apart_from_fp32(tiny, exported, tmp_path):
    again = export_onnx_int8(tiny, CONFIG, exported.path.parent)
    assert again.cache_hit and again.sha256 == exported.sha256 and again.precision == "int8"
    fresh = export_onnx_int8(get_supernet("tiny"), CONFIG, tmp_path)       # another process would do the same
    assert fresh.sha256 == exported.sha256 and not fresh.cache_hit
    fp32 = export_onnx(tiny, CONFIG, exported.path.parent)                 # same folder: its own cache entry
    assert not fp32.cache_hit and fp32.path != exported.path and fp32.precision == "fp32"


def test_host_runner_runs_the_int8_file_on_a_batch(tiny, exported):
    run = get_exporter("onnx", "int8").host_runner(exported)
    _, _, test_x, test_y = tiny.split()
    logits = run(prepare_images(test_x[:40], CONFIG["res"]).numpy())
    assert logits.shape == (40, 10)
    assert (logits.argmax(1) == test_y[:40]).mean() > 0.8      # a working digit classifier, not noise


def test_verification_catches_a_broken_quantization(tiny):
    fp32, module, _ = onnx_bytes(tiny, CONFIG)
    samples = [(x,) for x in tiny.calibration_inputs(CONFIG, count=CALIBRATION_COUNT + 8)]
    good = quantize_qdq(fp32, ["input"], samples[:CALIBRATION_COUNT])
    assert verify_int8(good, module, samples[CALIBRATION_COUNT:]) < 0.25
    model = onnx.load_from_string(good)
    # a wrong scale on the first quantized weight: what a buggy quantizer or a damaged file would do
    scales = [i for i in model.graph.initializer if i.name.endswith("_scale") and i.dims]
    arr = onnx.numpy_helper.to_array(scales[0]) * 50
    scales[0].CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), scales[0].name))
    with pytest.raises(ExportError, match="int8 ONNX"):
        verify_int8(model.SerializeToString(), module, samples[CALIBRATION_COUNT:])
    # a model of another sub-network in the place of this one
    other = dict(CONFIG, w_2=96, k_2=5)
    wrong = quantize_qdq(onnx_bytes(tiny, other)[0], ["input"], samples[:CALIBRATION_COUNT])
    with pytest.raises(ExportError, match="quantization lost the model"):
        verify_int8(wrong, module, samples[CALIBRATION_COUNT:])


def test_precisions_of_the_registry():
    assert get_exporter("onnx", "int8").precision == "int8" and get_exporter("tflite", "int8").precision == "int8"
    with pytest.raises(UsageError, match="exports onnx models in fp32, int8, not int4"):
        get_exporter("onnx", "int4")


def test_export_cli_int8(tmp_path, capsys):
    from fleetnas.host.cli import main

    out = tmp_path / "tiny-int8.onnx"
    code = main(["export", "--supernet", "tiny", "--config", tiny_key(), "--precision", "int8", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 0 and "(onnx int8," in capsys.readouterr().out
    assert "fleetnas.precision" in {p.key for p in onnx.load(str(out)).metadata_props}
    try:
        import litert_torch  # noqa: F401
    except ImportError:   # the converter missing: named, with the install command, before any work
        code = main(["export", "--supernet", "tiny", "--config", tiny_key(), "--precision", "int8", "--format",
                     "tflite", "--out", str(tmp_path / "x.tflite"), "--cache-dir", str(tmp_path / "cache2")])
        err = capsys.readouterr().err
        assert code == 2 and "pip install 'fleetnas[tflite-export]'" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "cache2").exists() and not (tmp_path / "x.tflite").exists()


def tiny_key() -> str:
    import json
    return json.dumps(CONFIG)
