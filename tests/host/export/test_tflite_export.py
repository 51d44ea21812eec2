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
