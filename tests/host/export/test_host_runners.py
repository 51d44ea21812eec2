"""Exporters run their exported model on the host (host_runner): a batch in, one row of outputs per sample out."""
from __future__ import annotations

import numpy as np
import pytest

from fleetnas.agent.measure.reference_model import reference_output, write_reference_model
from fleetnas.host.export.onnx import ExportedModel
from fleetnas.host.export.registry import get_exporter


@pytest.mark.parametrize("model_format", ["onnx", "tflite"])
def test_host_runner_gives_the_models_output_for_every_sample(tmp_path, model_format):
    if model_format == "tflite":
        pytest.importorskip("ai_edge_litert", reason="LiteRT not installed: pip install -e '.[litert]'")
    path = write_reference_model(tmp_path, model_format, rows=1, width=16, depth=2, seed=3)
    exported = ExportedModel(path, "sha", path.stat().st_size, model_format, "{}", "reference", 0.0)
    exporter = get_exporter(model_format)
    run = exporter.host_runner(exported)
    batch = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    out = run(batch)      # the file was written for one row at a time, as boards measure it: run per sample
    assert out.shape == (5, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference_output(batch, 16, 2, 3), rtol=1e-4, atol=1e-5)
