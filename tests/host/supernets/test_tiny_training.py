"""scripts/train_tiny.py is reproducible: the same seed gives bit-identical weights (slow: it trains twice)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "train_tiny.py"


@pytest.mark.slow
def test_training_is_reproducible():
    spec = importlib.util.spec_from_file_location("train_tiny", SCRIPT)
    train_tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tiny)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:  # train() pins threads and deterministic algorithms for the process; restore them for later tests
        first = train_tiny.train(epochs_full=1, epochs_elastic=1, batch_size=128, lr=5e-3, seed=0).state_dict()
        second = train_tiny.train(epochs_full=1, epochs_elastic=1, batch_size=128, lr=5e-3, seed=0).state_dict()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert all(torch.equal(first[k], second[k]) for k in first)
