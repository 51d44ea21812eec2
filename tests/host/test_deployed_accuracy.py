"""Accuracy of the deployed model: with int8 the quantized file is evaluated in onnxruntime, not the float network."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from fleetnas.host.accuracy.deployed import DeployedEvaluator
from fleetnas.host.export.onnx_exporter import OnnxExporter
from fleetnas.host.export.registry import get_exporter
from fleetnas.host.store.accuracy_cache import AccuracyCache
from fleetnas.host.supernets import get_supernet
from fleetnas.host.supernets.tiny import prepare_images

# the smallest sub-network: its int8 model classifies one more held-out digit right than its float network does
CONFIG = {"res": 12, "w_0": 16, "d_0": 1, "k_0": 3, "w_1": 32, "d_1": 1, "k_1": 3, "w_2": 48, "d_2": 1, "k_2": 3}


@pytest.fixture(scope="module")
def tiny():
    return get_supernet("tiny")


@pytest.fixture(scope="module")
def int8_model(tiny, tmp_path_factory):
    return get_exporter("onnx", "int8").export(tiny, CONFIG, tmp_path_factory.mktemp("models"))


def independent_accuracy(tiny, model_path) -> float:
    """The file in a plain onnxruntime session, one held-out digit at a time (as the exported batch-1 model takes)."""
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    _, _, test_x, test_y = tiny.split()
    images = prepare_images(test_x, CONFIG["res"]).numpy()
    predictions = [int(session.run(None, {"input": images[i:i + 1]})[0].argmax()) for i in range(len(images))]
    return float(np.mean(np.array(predictions) == test_y))


def test_int8_accuracy_is_the_quantized_models(tiny, int8_model, tmp_path):
    float_accuracy = tiny.evaluate(CONFIG)
    cache = AccuracyCache(tmp_path / "accuracy.sqlite")
    result = DeployedEvaluator(tiny, "int8").evaluate(CONFIG, float_accuracy, int8_model, get_exporter("onnx", "int8"),
                                                      cache=cache, accuracy_id="w")
    assert result.accuracy_model == "onnx-int8"
    assert result.accuracy == result.int8_accuracy == independent_accuracy(tiny, int8_model.path)
    assert result.float_accuracy == float_accuracy and result.int8_accuracy != float_accuracy
    assert result.drop == pytest.approx(float_accuracy - result.int8_accuracy)
    # kept under the evaluated model's sha256: the next run reads it instead of evaluating again
    assert cache.lookup("tiny", f"w|model:{int8_model.sha256}", tiny.key(CONFIG)) == result.int8_accuracy
    cache.close()


def test_fp32_accuracy_is_the_float_networks(tiny, tmp_path):
    exported = get_exporter("onnx").export(tiny, CONFIG, tmp_path)
    result = DeployedEvaluator(tiny, "fp32").evaluate(CONFIG, 0.5, exported, get_exporter("onnx"))
    assert (result.accuracy, result.float_accuracy, result.int8_accuracy, result.accuracy_model) == \
        (0.5, 0.5, None, "torch-fp32")


class NoHostRunner:
    """An exporter of a format this host cannot run (as a board-only runtime's would be)."""
    format, suffix, precisions = "pte", ".pte", ("fp32", "int8")

    def __init__(self, precision="fp32"):
        self.precision = precision


def test_without_a_host_runner_the_int8_onnx_model_stands_in(tiny, int8_model, tmp_path):
    exported = OnnxExporter("int8").export(tiny, CONFIG, int8_model.path.parent)
    result = DeployedEvaluator(tiny, "int8", proxy_dir=tmp_path).evaluate(CONFIG, 0.9, exported, NoHostRunner("int8"))
    assert result.accuracy_model == "onnx-int8-proxy"
    assert result.int8_accuracy == independent_accuracy(tiny, int8_model.path)
    assert list(tmp_path.glob("*.onnx"))      # the stand-in was exported where asked
