"""The tiny super-network: real accuracy on held-out digits, extraction == weight-sharing forward, counts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetnas.host.errors import UsageError
from fleetnas.host.supernets import get_supernet
from fleetnas.host.supernets.counting import count_macs
from fleetnas.host.supernets.tiny import prepare_images


@pytest.fixture(scope="module")
def tiny():
    return get_supernet("tiny")


def configs(supernet, n, seed=0):
    rng = np.random.default_rng(seed)
    return [supernet.space.sample(rng) for _ in range(n)]


def extreme(supernet, pick):
    return {p.name: pick(p.options) for p in supernet.space.params}


def test_space_is_worth_searching(tiny):
    assert 500 <= tiny.space.size <= 20000


def test_extracted_subnet_equals_supernet_with_config_active(tiny):
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for config in configs(tiny, 3) + [extreme(tiny, max), extreme(tiny, min)]:
        xr = torch.nn.functional.interpolate(x, size=(config["res"],) * 2, mode="bilinear", align_corners=False)
        with torch.no_grad():
            torch.testing.assert_close(tiny.slice(config)(xr), tiny.net(xr, config), rtol=1e-5, atol=1e-5)


def test_macs_and_params_closed_forms_match_a_direct_count(tiny):
    for config in configs(tiny, 3, seed=1) + [extreme(tiny, max), extreme(tiny, min)]:
        sub = tiny.slice(config)
        assert tiny.macs(config) == count_macs(sub, tiny.example_input(config))
        assert tiny.params(config) == sum(p.numel() for p in sub.parameters())


def test_accuracy_is_real_and_ordered(tiny):
    """Its speed (well under a second per config) is printed by benchmarks/export_speed.py, not timed here."""
    big, small = extreme(tiny, max), extreme(tiny, min)
    acc_big = tiny.accuracy(big)
    acc_small = tiny.accuracy(small)
    assert acc_big >= 0.93, acc_big                   # 450 held-out digits; chance is 0.10
    assert 0.5 < acc_small <= acc_big
    assert tiny.accuracy(dict(big)) == acc_big        # cached by canonical key


def test_extract_bakes_in_the_recalibrated_statistics_it_is_evaluated_with(tiny):
    config = configs(tiny, 1, seed=3)[0]
    _, _, test_x, test_y = tiny.split()
    with torch.no_grad():
        pred = tiny.extract(config)(prepare_images(test_x, config["res"])).argmax(1).numpy()
    assert float((pred == test_y).mean()) == tiny.accuracy(config)


def test_latency_relevant_spread(tiny):
    ratio = tiny.macs(extreme(tiny, max)) / tiny.macs(extreme(tiny, min))
    assert ratio > 10


def test_bad_config_names_the_parameter(tiny):
    with pytest.raises(UsageError, match="w_0"):
        tiny.extract(dict(extreme(tiny, max), w_0=17))
    with pytest.raises(UsageError, match="missing parameter"):
        tiny.macs({"res": 12})


def test_bad_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "w.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="train_tiny"):
        get_supernet("tiny", weights=bad)
    with pytest.raises(UsageError, match="does not exist"):
        get_supernet("tiny", weights=tmp_path / "missing.npz")
