"""The HAT-style transformer: extraction == elastic forward, canonical decoder genes, token accuracy.

Its export (fixed length, MACs vs the graph) is tested in tests/host/export/test_transformer_export.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetnas.host.errors import UsageError
from fleetnas.host.supernets.transformer import HatDims, TransformerSuperNet, arch_of

# HAT's structure (6 encoder layers, 1-6 decoder layers, arbitrary enc-dec attention) at toy widths: fast tests
DIMS = HatDims(vocab=97, seq_len=8, max_positions=16, qkv_dim=16, embed=(8, 12), ffn=(16, 24, 32))


@pytest.fixture(scope="module")
def hat():
    return TransformerSuperNet(dims=DIMS)


def configs(hat, n):
    rng = np.random.default_rng(0)
    return [hat.space.sample(rng) for _ in range(n)]


def test_default_space_is_hats():
    dims = HatDims()  # checked without building the 90M-parameter default super-network
    assert dims.embed == (512, 640) and dims.ffn == (1024, 2048, 3072) and dims.heads == (4, 8)
    assert dims.dec_layers == (1, 2, 3, 4, 5, 6) and dims.arbitrary == (1, 2, 3) and dims.enc_layers == 6


def test_extracted_subnet_equals_the_elastic_forward(hat):
    for config in configs(hat, 4):
        src, prev = hat.example_input(config)
        with torch.no_grad():
            expected = hat.net(src, prev, arch_of(hat.validate(config), DIMS))
            torch.testing.assert_close(hat.extract(config)(src, prev), expected)


def test_decoder_genes_of_absent_layers_are_canonicalised(hat):
    config = dict(configs(hat, 1)[0], dec_layers=2)
    variant = dict(config, dec_ffn_5=32 if config["dec_ffn_5"] != 32 else 16)
    assert hat.key(config) == hat.key(variant)


def test_token_accuracy_needs_data_and_is_computed(hat):
    with pytest.raises(UsageError, match="callable"):
        hat.evaluator()
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randint(0, 97, (2, 8), generator=gen), torch.randint(0, 97, (2, 8), generator=gen),
                torch.randint(0, 97, (2, 8), generator=gen))]
    accuracy = hat.accuracy(configs(hat, 1)[0], data=lambda: iter(batches))
    assert 0.0 <= accuracy <= 1.0
