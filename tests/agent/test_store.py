"""The content-addressed model store: verification, persistence across restarts, quota with LRU eviction."""
import hashlib
import os
import time

import pytest

from fleetnas.agent.errors import Busy, InvalidModel, ModelNotFound
from fleetnas.agent.measure.reference_model import build_onnx_bytes, build_tflite_bytes
from fleetnas.agent.store.model_store import ModelStore


def put(store, data, fmt="onnx", sha=None, size=None):
    upload = store.begin_upload(sha or hashlib.sha256(data).hexdigest(), len(data) if size is None else size, fmt)
    upload.write(data)
    return upload.commit()


def onnx(seed=0, width=16):
    return build_onnx_bytes(width=width, seed=seed)


def test_upload_then_lookup_and_survive_restart(tmp_path):
    store = ModelStore(tmp_path, quota_bytes=10 * 2**20)
    model, evicted = put(store, onnx())
    assert evicted == [] and model.format == "onnx"
    assert store.get(model.sha256) == model
    tfl, _ = put(store, build_tflite_bytes(width=16), fmt="")  # format sniffed when not declared
    assert tfl.format == "tflite"
    reopened = ModelStore(tmp_path, quota_bytes=10 * 2**20)
    assert {m.sha256 for m in reopened.list()} == {model.sha256, tfl.sha256}
    with reopened.use(model.sha256) as (path, _):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256


def test_sha256_mismatch_names_both_hashes(tmp_path):
    store = ModelStore(tmp_path, quota_bytes=2**20)
    wrong = "ab" * 32
    with pytest.raises(InvalidModel, match=f"sha256 mismatch: expected {wrong}, got [0-9a-f]{{64}}"):
        put(store, onnx(), sha=wrong)
    assert store.list() == [] and list((tmp_path / "incoming").iterdir()) == []


@pytest.mark.parametrize("mangle,message", [
    (lambda d: d[: len(d) // 2], "truncated: a protobuf field runs past the end"),
    (lambda d: b"\x00" * 64, "not a valid onnx model"),
    (lambda d: b"hello, this is not a model at all" * 4, "not a valid onnx model"),
])
def test_broken_onnx_is_refused_with_the_reason(tmp_path, mangle, message):
    store = ModelStore(tmp_path, quota_bytes=2**20)
    with pytest.raises(InvalidModel, match=message):
        put(store, mangle(onnx()))
    assert store.list() == []


def test_declared_format_must_match_the_bytes(tmp_path):
    store = ModelStore(tmp_path, quota_bytes=2**20)
    with pytest.raises(InvalidModel, match="it looks like a onnx file"):
        put(store, onnx(), fmt="tflite")
    with pytest.raises(InvalidModel, match="not a model file in any known format"):
        put(store, os.urandom(256), fmt="")


def test_size_must_match_the_header_and_the_limit(tmp_path):
    store = ModelStore(tmp_path, quota_bytes=2**20, max_upload_bytes=4096)
    data = onnx()
    with pytest.raises(InvalidModel, match="truncated: got"):
        put(store, data, size=len(data) + 10)
    with pytest.raises(InvalidModel, match="longer than the declared size_bytes"):
        put(store, data, size=len(data) - 1)
    with pytest.raises(InvalidModel, match="exceeds this agent's upload limit of 4096 bytes"):
        store.begin_upload("00" * 32, 5000, "onnx")


def test_quota_evicts_least_recently_used_but_never_a_pinned_model(tmp_path):
    a, b, c = (onnx(seed=s, width=32) for s in range(3))
    store = ModelStore(tmp_path, quota_bytes=int(2.5 * len(a)))
    ma, _ = put(store, a)
    time.sleep(1.1)  # LRU has one-second resolution
    mb, _ = put(store, b)
    time.sleep(1.1)
    with store.use(ma.sha256):  # a is now the most recently used, and pinned
        mc, evicted = put(store, c)
        assert evicted == [mb.sha256]
        with pytest.raises(Busy, match="model store is full"):
            with store.use(mc.sha256):
                put(store, onnx(seed=9, width=32))
    assert {m.sha256 for m in store.list()} == {ma.sha256, mc.sha256}
    assert store.used_bytes() <= store.quota_bytes


def test_restart_drops_half_written_files(tmp_path):
    store = ModelStore(tmp_path, quota_bytes=2**20)
    model, _ = put(store, onnx())
    (tmp_path / "incoming" / "x.part").write_bytes(b"partial")
    (tmp_path / "models" / ("cd" * 32 + ".model")).write_bytes(b"orphan without metadata")
    (tmp_path / "models" / (model.sha256 + ".model")).write_bytes(b"corrupted")  # size no longer matches
    reopened = ModelStore(tmp_path, quota_bytes=2**20)
    assert reopened.list() == []
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == []
    with pytest.raises(ModelNotFound, match="call UploadModel first"):
        with reopened.use(model.sha256):
            pass
