"""ONNX export: single file, opset >= 17, metadata, verified, deterministic, cached; MACs vs the graph's own count."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from fleetnas.host.export.onnx import ExportError, export_onnx
from fleetnas.host.supernets import get_supernet

from onnx_macs import onnx_macs


@pytest.fixture(scope="module")
def tiny():
    return get_supernet("tiny")


def sample(supernet, seed):
    return supernet.space.sample(np.random.default_rng(seed))


def test_export_is_a_verified_single_file_with_metadata(tiny, tmp_path):
    config = sample(tiny, 0)
    exported = export_onnx(tiny, config, tmp_path)
    assert exported.path.is_file() and exported.format == "onnx" and not exported.cache_hit
    data = exported.path.read_bytes()
    assert exported.sha256 == hashlib.sha256(data).hexdigest() and exported.size_bytes == len(data)
    assert exported.max_abs_error <= 1e-4
    model = onnx.load_from_string(data)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert all(init.data_location != onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["fleetnas.supernet"] == "tiny"
    assert json.loads(meta["fleetnas.config"]) == tiny.validate(config)
    assert meta["fleetnas.config"] == exported.config_key == tiny.key(config)
    # the file runs in onnxruntime and gives the torch sub-network's output on a fresh input
    x = torch.randn(2, 1, config["res"], config["res"], generator=torch.Generator().manual_seed(5))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = tiny.extract(config)(x).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x[:1].numpy()})[0], expected[:1], atol=1e-4, rtol=1e-4)


def test_export_is_deterministic_and_cached(tiny, tmp_path):
    config = sample(tiny, 1)
    first = export_onnx(tiny, config, tmp_path / "a")
    again = export_onnx(tiny, config, tmp_path / "a")
    elsewhere = export_onnx(get_supernet("tiny"), config, tmp_path / "b")   # a fresh super-network object
    assert again.cache_hit and again.sha256 == first.sha256 and again.path == first.path
    assert elsewhere.sha256 == first.sha256
    other = export_onnx(tiny, sample(tiny, 2), tmp_path / "a")
    assert other.sha256 != first.sha256 and other.path != first.path


@pytest.mark.slow  # ~10-30 s: a second interpreter importing torch and onnx
def test_export_bytes_are_identical_in_another_process(tiny, tmp_path):
    """The host keys measurements by sha256 across runs and resumes: a new process must produce the same bytes."""
    import subprocess
    import sys

    config = sample(tiny, 4)
    code = ("import json, sys; from fleetnas.host.supernets import get_supernet; "
            "from fleetnas.host.export.onnx import export_onnx; "
            "print(export_onnx(get_supernet('tiny'), json.loads(sys.argv[1]), sys.argv[2]).sha256)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(config), str(tmp_path / "other")],
                         capture_output=True, text=True, check=True, timeout=300).stdout.split()[-1]
    assert out == export_onnx(tiny, config, tmp_path / "here").sha256


def test_equivalent_configs_share_one_cache_entry(tmp_path):
    from fleetnas.host.supernets.ofa_mbv3 import mbv3_space

    space = mbv3_space()
    config = space.sample(np.random.default_rng(0))
    config["d_0"] = 2
    variant = dict(config, ks_3=7 if config["ks_3"] != 7 else 5)      # block 3 is left out at depth 2
    assert space.key(config) == space.key(variant)


def test_a_torn_cache_file_is_exported_again(tiny, tmp_path):
    config = sample(tiny, 3)
    first = export_onnx(tiny, config, tmp_path)
    first.path.write_bytes(b"garbage")
    second = export_onnx(tiny, config, tmp_path)
    assert not second.cache_hit and second.sha256 == first.sha256


def test_hook_macs_match_the_onnx_graph_count(tiny, tmp_path):
    for config in (sample(tiny, 0), {p.name: max(p.options) for p in tiny.space.params}):
        model = onnx.load(str(export_onnx(tiny, config, tmp_path).path))
        assert tiny.macs(config) == onnx_macs(model)


def test_old_opset_is_refused(tiny, tmp_path):
    with pytest.raises(ExportError, match="opset"):
        export_onnx(tiny, sample(tiny, 0), tmp_path, opset=13)


@pytest.mark.slow
def test_ofa_mbv3_export_verifies_and_macs_match_the_graph(tmp_path):
    supernet = get_supernet("ofa-mbv3")
    config = dict(sample(supernet, 0), res=128)
    exported = export_onnx(supernet, config, tmp_path)
    assert exported.max_abs_error <= 1e-4
    assert supernet.macs(config) == onnx_macs(onnx.load(str(exported.path)))


@pytest.mark.slow
def test_ofa_resnet50_export_verifies_and_macs_match_the_graph(tmp_path):
    supernet = get_supernet("ofa-resnet50")
    config = dict(sample(supernet, 0), res=128)
    exported = export_onnx(supernet, config, tmp_path)
    assert exported.max_abs_error <= 1e-4
    assert supernet.macs(config) == onnx_macs(onnx.load(str(exported.path)))


def test_a_network_that_cannot_be_exported_is_an_export_error(tmp_path):
    from fleetnas.host.search.space import Choice, SearchSpace
    from fleetnas.host.supernets.base import SuperNet

    class FFTNet(SuperNet):   # torch.fft has no ONNX export
        name = "fft"
        space = SearchSpace([Choice("n", (4,))])

        def _extract(self, config):
            class M(torch.nn.Module):
                def forward(self, x):
                    return torch.fft.rfft(x).abs()
            return M()

        def _example_input(self, config):
            return torch.ones(1, config["n"])

    with pytest.raises(ExportError, match="ONNX export of fft"):
        export_onnx(FFTNet(), {"n": 4}, tmp_path)
