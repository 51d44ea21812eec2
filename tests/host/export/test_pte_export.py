"""ExecuTorch (.pte) export of tiny sub-networks: deterministic bytes, verified in ExecuTorch's runtime, cached, and
run on the host through ``host_runner`` (tests/host/test_cli_executorch_missing.py: without executorch)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

CONFIG = {"d_0": 1, "d_1": 1, "d_2": 1, "k_0": 5, "k_1": 5, "k_2": 5, "res": 16, "w_0": 24, "w_1": 48, "w_2": 96}


@pytest.fixture
def tiny():
    pytest.importorskip("executorch", reason="executorch not installed: pip install 'fleetnas[executorch]'")
    from fleetnas.host.supernets import get_supernet
    return get_supernet("tiny")


def _torch_logits(tiny, images: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return tiny.extract(CONFIG).eval()(torch.from_numpy(images)).numpy()


def test_fp32_pte_is_deterministic_verified_cached_and_runs_on_the_host(tmp_path, tiny):
    from fleetnas.host.export.registry import get_exporter

    exporter = get_exporter("pte")
    first = exporter.export(tiny, CONFIG, tmp_path / "a")
    assert first.format == "pte" and first.path.suffix == ".pte" and not first.cache_hit
    assert first.max_abs_error <= 1e-4 and first.path.read_bytes()[4:8] == b"ET12"
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    again = exporter.export(tiny, CONFIG, tmp_path / "a")
    assert again.cache_hit and again.sha256 == first.sha256
    fresh = exporter.export(tiny, CONFIG, tmp_path / "b")   # a new export, not the cache: the same bytes
    assert not fresh.cache_hit and fresh.sha256 == first.sha256

    images = np.random.default_rng(1).standard_normal((3, 1, 16, 16)).astype(np.float32)
    logits = exporter.host_runner(first)(images)   # static batch 1: run sample by sample
    assert logits.dtype == np.float32 and logits.shape == (3, 10)
    np.testing.assert_allclose(logits, _torch_logits(tiny, images), rtol=1e-4, atol=1e-4)


def test_int8_pte_keeps_the_top1_class_and_has_its_own_cache_entry(tmp_path, tiny):
    from fleetnas.host.export.registry import get_exporter

    fp32 = get_exporter("pte").export(tiny, CONFIG, tmp_path)
    exporter = get_exporter("pte", "int8")
    q = exporter.export(tiny, CONFIG, tmp_path)
    assert q.path != fp32.path and q.sha256 != fp32.sha256 and q.size_bytes < fp32.size_bytes
    assert 0 < q.max_abs_error <= 0.35          # relative error on the calibration inputs, checked at export
    assert exporter.export(tiny, CONFIG, tmp_path).cache_hit

    images = np.concatenate([x.numpy() for x in tiny.calibration_inputs(CONFIG)])
    reference = _torch_logits(tiny, images)
    logits = exporter.host_runner(q)(images)
    assert logits.shape == reference.shape
    assert np.mean(logits.argmax(1) == reference.argmax(1)) >= 0.75


@pytest.mark.slow
def test_int8_pte_bytes_are_deterministic(tmp_path, tiny):
    from fleetnas.host.export.registry import get_exporter

    exporter = get_exporter("pte", "int8")
    assert exporter.export(tiny, CONFIG, tmp_path / "a").sha256 == exporter.export(tiny, CONFIG, tmp_path / "b").sha256

