"""Import the `ofa` package (mit-han-lab/once-for-all) with a stand-in for torchvision.

`ofa` imports torchvision at module level only for its data loaders; PyPI's torchvision does not import beside
the CPU torch wheel this project pins, so tests give it an empty stand-in. Returns None when `ofa` is not installed.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def import_ofa_networks():
    if importlib.util.find_spec("ofa") is None:
        return None
    if importlib.util.find_spec("torchvision") is None and "torchvision" not in sys.modules:
        root = types.ModuleType("torchvision")
        transforms = types.ModuleType("torchvision.transforms")
        transforms.functional = types.ModuleType("torchvision.transforms.functional")
        transforms.RandomResizedCrop = type("RandomResizedCrop", (), {})  # subclassed by ofa's data loader
        transforms.InterpolationMode = type("InterpolationMode", (), {"BILINEAR": 2, "BICUBIC": 3})
        datasets = types.ModuleType("torchvision.datasets")
        root.transforms, root.datasets = transforms, datasets
        sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                            "torchvision.transforms.functional": transforms.functional,
                            "torchvision.datasets": datasets})
    return importlib.import_module("ofa.imagenet_classification.elastic_nn.networks")
