"""The accuracy evaluator over user data: image folders and callables, BN recalibration, caching."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fleetnas.host.accuracy.bn_calibration import recalibrate_bn
from fleetnas.host.accuracy.evaluator import AccuracyEvaluator, ImageFolder
from fleetnas.host.errors import UsageError
from fleetnas.host.search.space import Choice, SearchSpace
from fleetnas.host.supernets.base import SuperNet


class ColourNet(SuperNet):
    """Classifies images by their mean red vs blue; a BN in front makes recalibration matter."""

    name = "colour"

    def __init__(self, weights=None):
        super().__init__(weights)
        self.space = SearchSpace([Choice("res", (8, 16))])
        self.extracted = 0

    def _extract(self, config):
        self.extracted += 1
        net = nn.Sequential(nn.BatchNorm2d(3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
        with torch.no_grad():
            net[0].running_mean.copy_(torch.tensor([0.0, 0.0, 100.0]))  # stale: all 'red' until recalibrated
            net[3].weight.copy_(torch.tensor([[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]))  # class 0 blue, 1 red
            net[3].bias.zero_()
        return net

    def _example_input(self, config):
        return torch.zeros(1, 3, config["res"], config["res"])


def write_folder(root, n_per_class=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, channel in (("blue", 2), ("red", 0)):
        (root / label).mkdir(parents=True)
        for i in range(n_per_class):
            img = rng.integers(0, 60, size=(20, 24, 3), dtype=np.uint8)
            img[..., channel] = 200
            Image.fromarray(img).save(root / label / f"{i}.png")


def test_recalibration_replaces_stale_statistics():
    bn = nn.BatchNorm2d(2)
    bn.running_mean.fill_(5.0)
    x = torch.randn(64, 2, 4, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
    recalibrate_bn(bn, [x[:32], x[32:]])
    torch.testing.assert_close(bn.running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-4)
    assert not bn.training and bn.momentum == 0.1
    with pytest.raises(ValueError, match="no batches"):
        recalibrate_bn(bn, [])


def test_image_folder_accuracy_with_recalibration_and_cache(tmp_path):
    write_folder(tmp_path / "val")
    net = ColourNet()
    cache = tmp_path / "acc.json"
    evaluator = AccuracyEvaluator(net, tmp_path / "val", calib_batches=1, cache_path=cache)
    assert ImageFolder(tmp_path / "val").classes == ["blue", "red"]
    assert evaluator.evaluate({"res": 8}) == 1.0
    assert evaluator.evaluate({"res": 8}) == 1.0 and net.extracted == 1          # in-memory cache
    again = AccuracyEvaluator(net, tmp_path / "val", cache_path=cache)
    assert again.evaluate({"res": 8}) == 1.0 and net.extracted == 1               # file cache
    assert again.evaluate({"res": 16}) == 1.0 and net.extracted == 2


def test_callable_data(tmp_path):
    def batches(res):
        x = torch.zeros(4, 3, res, res)
        x[:2, 2] = 1.0
        x[2:, 0] = 1.0
        yield x, torch.tensor([0, 0, 1, 1])

    assert AccuracyEvaluator(ColourNet(), batches).evaluate({"res": 16}) == 1.0
    assert AccuracyEvaluator(ColourNet(), batches, calib_batches=0).evaluate({"res": 8}) == 0.5  # stale stats


def test_missing_or_bad_data_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="needs validation data"):
        AccuracyEvaluator(ColourNet(), None)
    with pytest.raises(UsageError, match="does not exist"):
        AccuracyEvaluator(ColourNet(), tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(UsageError, match="no images"):
        AccuracyEvaluator(ColourNet(), tmp_path / "empty")


def test_ofa_supernets_route_accuracy_through_the_evaluator():
    from fleetnas.host.supernets.ofa_mbv3 import OFAMobileNetV3SuperNet

    with pytest.raises(UsageError, match="ofa-mbv3 needs validation data"):
        OFAMobileNetV3SuperNet().accuracy({})  # the data check comes before anything is built
