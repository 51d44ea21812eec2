"""Checkpoint compatibility with the `ofa` package: its own networks' state dicts load into ours, same outputs.

The `ofa` networks are built with random weights, every parameter and BN statistic perturbed (so the kernel
transform matrices are not the identity), then their state dict is loaded into ours with strict=True.
Small resolutions and 10 classes keep this fast; the structure is the full published one.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ofa_stub import import_ofa_networks

networks = import_ofa_networks()
pytestmark = pytest.mark.skipif(networks is None,
                                reason="the `ofa` package is not installed (pip install --no-deps ofa)")


def randomize(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.state_dict().items()):
            if name.endswith("num_batches_tracked"):
                continue
            noise = torch.randn(tensor.shape, generator=gen) * 0.1
            if name.endswith("running_var"):
                tensor.copy_(1.0 + noise.abs())
            else:
                tensor.add_(noise)


def ofa_profile(module, x):
    """(MACs, params) by the `ofa` package's own counter, on a copy (it registers buffers on the modules)."""
    from ofa.utils.flops_counter import profile

    ops, params = profile(copy.deepcopy(module), tuple(x.shape))
    return int(ops), int(params)


def assert_counts_match_ofa(our_sub, ofa_sub, x):
    from fleetnas.host.supernets.counting import count_macs

    assert (count_macs(our_sub, x[:1]), sum(p.numel() for p in our_sub.parameters())) == ofa_profile(ofa_sub, x[:1])


def outputs(module, x):
    with torch.no_grad():
        return module(x)


@pytest.fixture(scope="module")
def mbv3_pair():
    from fleetnas.host.supernets.ofa_mbv3 import OFAMobileNetV3Net

    torch.manual_seed(0)
    theirs = networks.OFAMobileNetV3(n_classes=10, dropout_rate=0, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                                     depth_list=[2, 3, 4]).eval()
    randomize(theirs, 1)
    ours = OFAMobileNetV3Net(n_classes=10).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def test_mbv3_state_dict_keys_are_the_official_ones(mbv3_pair):
    theirs, ours = mbv3_pair
    assert list(theirs.state_dict()) == list(ours.state_dict())


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_mbv3_same_outputs_as_ofa_for_the_same_subnet(mbv3_pair, seed):
    from fleetnas.host.supernets.ofa_mbv3 import N_BLOCKS, mbv3_space

    theirs, ours = mbv3_pair
    config = mbv3_space().sample(np.random.default_rng(seed))
    theirs.set_active_subnet(ks=[config[f"ks_{j}"] for j in range(N_BLOCKS)],
                             e=[config[f"e_{j}"] for j in range(N_BLOCKS)], d=[config[f"d_{s}"] for s in range(5)])
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    expected = outputs(theirs, x)
    torch.testing.assert_close(outputs(lambda t: ours(t, config), x), expected, rtol=1e-4, atol=1e-5)
    # the extracted standalone network is OFA's own static sub-network, key for key and output for output
    ofa_sub = theirs.get_active_subnet(preserve_weight=True).eval()
    our_sub = ours.extract(config).eval()
    assert list(ofa_sub.state_dict()) == list(our_sub.state_dict())
    torch.testing.assert_close(outputs(our_sub, x), outputs(ofa_sub, x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outputs(our_sub, x), expected, rtol=1e-4, atol=1e-5)
    assert_counts_match_ofa(our_sub, ofa_sub, x)


def test_mbv3_supernet_loads_an_ofa_checkpoint_file(mbv3_pair, tmp_path):
    from fleetnas.host.supernets import get_supernet

    theirs, _ = mbv3_pair
    path = tmp_path / "ofa_mbv3.pth"
    # published checkpoints wrap the state dict and use the older `mobile_inverted_conv` name
    state = {k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k: v
             for k, v in theirs.state_dict().items()}
    torch.save({"state_dict": state}, path)
    supernet = get_supernet("ofa-mbv3", weights=path)
    for a, b in zip(supernet.net.state_dict().values(), theirs.state_dict().values()):
        assert torch.equal(a, b)
    assert supernet.weights_id.startswith("sha256:")


@pytest.fixture(scope="module")
def resnet_pair():
    from fleetnas.host.supernets.ofa_resnet import DEPTHS, EXPANDS, WIDTHS, OFAResNetsNet

    torch.manual_seed(0)
    theirs = networks.OFAResNets(n_classes=10, dropout_rate=0, depth_list=list(DEPTHS),
                                 expand_ratio_list=list(EXPANDS), width_mult_list=list(WIDTHS)).eval()
    randomize(theirs, 2)
    ours = OFAResNetsNet(n_classes=10).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def test_resnet_state_dict_keys_are_the_official_ones(resnet_pair):
    theirs, ours = resnet_pair
    assert list(theirs.state_dict()) == list(ours.state_dict())


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_resnet_same_outputs_as_ofa_for_the_same_subnet(resnet_pair, seed):
    from fleetnas.host.supernets.ofa_resnet import N_BLOCKS, WIDTHS, resnet_space

    theirs, ours = resnet_pair
    config = resnet_space().sample(np.random.default_rng(seed))
    config["d_0"] = 0 if seed == 0 else 2           # cover both the skipped and the kept stem residual
    theirs.set_active_subnet(d=[config[f"d_{i}"] for i in range(5)], e=[config[f"e_{j}"] for j in range(N_BLOCKS)],
                             w=[WIDTHS.index(config[f"w_{i}"]) for i in range(6)])
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    expected = outputs(theirs, x)
    torch.testing.assert_close(outputs(lambda t: ours(t, config), x), expected, rtol=1e-4, atol=1e-4)
    ofa_sub = theirs.get_active_subnet(preserve_weight=True).eval()
    our_sub = ours.extract(config).eval()
    assert list(ofa_sub.state_dict()) == list(our_sub.state_dict())
    torch.testing.assert_close(outputs(our_sub, x), outputs(ofa_sub, x), rtol=1e-4, atol=1e-4)
    assert_counts_match_ofa(our_sub, ofa_sub, x)
