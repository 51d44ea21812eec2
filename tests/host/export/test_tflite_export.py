"""TFLite export through litert-torch, verified in LiteRT (skipped when the [tflite-export] extra is absent)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="the [tflite-export] extra (litert-torch) is not installed")


def test_tiny_tflite_export_verifies_and_is_cached(tmp_path):
    from fleetnas.host.export.tflite import export_tflite
    from fleetnas.host.supernets import get_supernet

    tiny = get_supernet("tiny")
    config = tiny.space.sample(np.random.default_rng(0))
    exported = export_tflite(tiny, config, tmp_path)
    assert exported.format == "tflite" and exported.max_abs_error <= 1e-4
    assert exported.sha256 == hashlib.sha256(exported.path.read_bytes()).hexdigest()
    again = export_tflite(tiny, config, tmp_path)
    assert again.cache_hit and again.sha256 == exported.sha256


@pytest.mark.slow   # two conversions: 40 s of CPU, 150 s on a loaded 2-core machine
def test_tiny_int8_tflite_is_quantized_verified_and_evaluated_as_deployed(tmp_path):
    from fleetnas.host.accuracy.deployed import DeployedEvaluator
    from fleetnas.host.export.registry import get_exporter
    from fleetnas.host.supernets import get_supernet

    tiny = get_supernet("tiny")
    config = {"res": 12, "w_0": 16, "d_0": 1, "k_0": 3, "w_1": 32, "d_1": 1, "k_1": 3, "w_2": 48, "d_2": 1, "k_2": 3}
    exporter = get_exporter("tflite", "int8")
    exported = exporter.export(tiny, config, tmp_path)
    assert exported.precision == "int8" and 0 <= exported.max_abs_error <= 0.25
    fp32 = get_exporter("tflite").export(tiny, config, tmp_path)
    assert exported.size_bytes < fp32.size_bytes and exported.path != fp32.path
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(exported.path))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8      # fully int8, input included
    again = exporter.export(tiny, config, tmp_path)
    assert again.cache_hit and again.sha256 == exported.sha256
    result = DeployedEvaluator(tiny, "int8").evaluate(config, tiny.evaluate(config), exported, exporter)
    assert result.accuracy_model == "tflite-int8" and abs(result.int8_accuracy - result.float_accuracy) < 0.05
