"""The HAT-style transformer exported at a fixed sequence length: verified, counted, robust to random token ids."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from fleetnas.host.export.onnx import export_onnx
from fleetnas.host.supernets.transformer import HatDims, TransformerSuperNet

from onnx_macs import onnx_macs

DIMS = HatDims(vocab=97, seq_len=8, max_positions=16, qkv_dim=16, embed=(8, 12), ffn=(16, 24, 32))


@pytest.fixture(scope="module")
def hat():
    return TransformerSuperNet(dims=DIMS)


def configs(hat, n):
    rng = np.random.default_rng(0)
    return [hat.space.sample(rng) for _ in range(n)]


def test_export_at_fixed_length_verifies_and_counts_match_the_graph(hat, tmp_path):
    for config in configs(hat, 2):
        exported = export_onnx(hat, config, tmp_path)
        model = onnx.load(str(exported.path))
        assert [i.name for i in model.graph.input] == ["src_tokens", "prev_output_tokens"]
        assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, DIMS.seq_len]
        assert hat.macs(config) == onnx_macs(model)
        sub = hat.extract(config)
        assert hat.params(config) == sum(p.numel() for p in sub.parameters())
        # out-of-vocabulary ids (an agent's random input) still run: ids are clamped in the graph
        session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
        feeds = {"src_tokens": np.full((1, DIMS.seq_len), 10 ** 6, dtype=np.int64),
                 "prev_output_tokens": np.full((1, DIMS.seq_len), -5, dtype=np.int64)}
        assert session.run(None, feeds)[0].shape == (1, DIMS.seq_len, DIMS.vocab)
