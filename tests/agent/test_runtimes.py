"""The Runtime contract, run against each real runtime (onnxruntime, LiteRT), plus the onnx-free reference model.

Each subclass of RuntimeContract supplies ``runtime_name`` and ``make_model(path, cost, dynamic_batch)``; every test
in the contract runs for it, in-process (load/bind/run) and once through a real worker process.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from models import COSTS, make_onnx_all_dtypes_model, make_onnx_model, make_tflite_model

from fleetnas.agent import runtimes
from fleetnas.agent.errors import InvalidRequest
from fleetnas.agent.records import MeasureJob, Outcome, RuntimeOptions, Stability, TimingConfig
from fleetnas.agent.measure.reference_model import build_onnx_bytes, reference_output, write_reference_model
from fleetnas.agent.runtimes.base import InputSpec, make_inputs
from fleetnas.agent.measure.worker import run_measurement

QUICK = TimingConfig(warmup_runs=2, warmup_s=0.05, blocks=3, min_runs_per_block=5, min_block_s=0.05, timeout_s=120)


class RuntimeContract:
    runtime_name = ""
    model_format = ""

    def make_model(self, path, cost="small", dynamic_batch=False):
        raise NotImplementedError

    @pytest.fixture
    def runtime(self):
        return runtimes.require(self.runtime_name)

    def test_info_reports_version_and_providers(self, runtime):
        info = runtime.info()
        assert info.name == self.runtime_name and info.available and info.message == ""
        assert info.version and any(ch.isdigit() for ch in info.version)
        assert info.providers
        assert info in runtimes.runtime_infos()

    def test_load_bind_run_matches_the_numpy_reference(self, runtime, tmp_path):
        rows, width, depth = COSTS["small"]
        path = self.make_model(tmp_path / f"m.{self.model_format}")
        loaded = runtime.load(path, RuntimeOptions(threads=1), threads=1)
        assert loaded.inputs == (InputSpec("x", (rows, width), "float32"),)
        assert loaded.intra_op_threads == 1 and loaded.runtime_version
        feeds = make_inputs(loaded.inputs, seed=3)
        run = loaded.bind(feeds)
        out = self.output(loaded, run())
        np.testing.assert_allclose(out, reference_output(feeds["x"], width, depth, seed=0), rtol=1e-4, atol=1e-5)

    def test_dynamic_batch_becomes_one(self, runtime, tmp_path):
        path = self.make_model(tmp_path / f"dyn.{self.model_format}", cost="tiny", dynamic_batch=True)
        loaded = runtime.load(path, RuntimeOptions(), threads=1)
        assert loaded.inputs[0].shape == (1, COSTS["tiny"][1])
        loaded.bind(make_inputs(loaded.inputs, seed=0))()

    @pytest.mark.parametrize("content", [b"", b"\x00garbage" * 10, b"TFL3" * 8])
    def test_garbage_file_raises_at_load(self, runtime, tmp_path, content):
        path = tmp_path / f"bad.{self.model_format}"
        path.write_bytes(content)
        with pytest.raises(Exception) as info:
            runtime.load(path, RuntimeOptions(), threads=1)
        assert str(info.value)  # the runtime's message is what LOAD_FAILED carries

    def test_unknown_execution_provider_is_refused_with_the_choices(self, runtime, tmp_path):
        path = self.make_model(tmp_path / f"m.{self.model_format}", cost="tiny")
        with pytest.raises(ValueError, match="NoSuchProvider.*"):
            runtime.load(path, RuntimeOptions(execution_provider="NoSuchProvider"), threads=1)

    def test_measured_in_a_worker(self, tmp_path):
        path = self.make_model(tmp_path / f"m.{self.model_format}")
        job = MeasureJob(path, self.model_format, self.runtime_name, RuntimeOptions(threads=1), QUICK)
        result = run_measurement(job)
        assert result.outcome in (Outcome.OK, Outcome.UNSTABLE), result.message  # UNSTABLE: a noisy shared CI box
        assert result.config.runtime == self.runtime_name and result.config.intra_op_threads == 1
        assert result.config.input_shapes == (f"x:float32[{COSTS['small'][0]},{COSTS['small'][1]}]",)
        assert len(result.blocks) == 3 and all(b.n >= 5 for b in result.blocks)
        assert result.overall.n == sum(b.n for b in result.blocks)
        assert 0 < result.overall.min_ms <= result.overall.median_ms <= result.overall.p90_ms <= result.overall.max_ms
        assert result.phases.load_ms > 0 and result.phases.warmup_runs >= 2
        assert result.stability in tuple(Stability)

    @staticmethod
    def output(loaded, raw):
        return raw[0]


class TestOnnxRuntime(RuntimeContract):
    runtime_name, model_format = "onnxruntime", "onnx"

    def make_model(self, path, cost="small", dynamic_batch=False):
        return make_onnx_model(path, cost=cost, dynamic_batch=dynamic_batch)

    def test_session_options_follow_the_methodology(self, runtime, tmp_path):
        path = self.make_model(tmp_path / "m.onnx", cost="tiny")
        loaded = runtime.load(path, RuntimeOptions(allow_spinning=True, graph_optimization_level="basic"), threads=2)
        session = loaded.handle
        assert (loaded.intra_op_threads, loaded.inter_op_threads, loaded.allow_spinning) == (2, 1, True)
        assert loaded.graph_optimization_level == "ORT_ENABLE_BASIC"
        assert session.get_session_options().intra_op_num_threads == 2
        assert session.get_session_options().inter_op_num_threads == 1
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "1"
        with pytest.raises(ValueError, match="graph_optimization_level"):
            runtime.load(path, RuntimeOptions(graph_optimization_level="turbo"), threads=1)

    def test_every_input_dtype_gets_data(self, runtime, tmp_path):
        loaded = runtime.load(make_onnx_all_dtypes_model(tmp_path / "d.onnx"), RuntimeOptions(), threads=1)
        dtypes = {s.name: s.dtype for s in loaded.inputs}
        assert dtypes == {"f32": "float32", "f16": "float16", "i64": "int64", "i32": "int32", "u8": "uint8",
                          "flag": "bool", "text": "str"}
        feeds = make_inputs(loaded.inputs, seed=1)
        assert feeds["f32"].shape == (1, 4)
        y, text = loaded.bind(feeds)()
        assert y.shape == (1, 4) and text.tolist() == [["a", "a"]]
        again = make_inputs(loaded.inputs, seed=1)
        assert all(np.array_equal(feeds[k], again[k]) for k in feeds)  # same seed, same bytes


class TestLiteRt(RuntimeContract):
    runtime_name, model_format = "litert", "tflite"

    def make_model(self, path, cost="small", dynamic_batch=False):
        return make_tflite_model(path, cost=cost, dynamic_batch=dynamic_batch)

    @staticmethod
    def output(loaded, raw):
        interp = loaded.handle
        return interp.get_tensor(interp.get_output_details()[0]["index"])

    def test_xnnpack_is_really_used_and_can_be_turned_off(self, runtime, tmp_path):
        path = self.make_model(tmp_path / "m.tflite", cost="tiny")
        assert runtime.load(path, RuntimeOptions(), threads=1).execution_provider == "XNNPACK"
        assert runtime.load(path, RuntimeOptions(execution_provider="none"), threads=1).execution_provider == "NONE"


def test_reference_onnx_is_valid_without_the_onnx_package_and_matches_numpy(tmp_path):
    import onnx
    import onnxruntime as ort

    data = build_onnx_bytes(rows=3, width=24, depth=3, seed=5)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    x = np.random.default_rng(0).standard_normal((3, 24)).astype(np.float32)
    (y,) = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, reference_output(x, 24, 3, 5), rtol=1e-5, atol=1e-6)
    # The hand encoder and onnx.helper describe the same network: identical outputs from both files.
    rows, width, depth = COSTS["small"]
    hand = ort.InferenceSession(build_onnx_bytes(rows, width, depth, seed=5))
    helper = ort.InferenceSession(str(make_onnx_model(tmp_path / "h.onnx", cost="small", seed=5)))
    x = np.random.default_rng(1).standard_normal((rows, width)).astype(np.float32)
    np.testing.assert_array_equal(hand.run(None, {"x": x})[0], helper.run(None, {"x": x})[0])
    with pytest.raises(ValueError, match="width"):
        build_onnx_bytes(width=0)


def test_reference_models_written_for_both_formats(tmp_path):
    onnx_path = write_reference_model(tmp_path, "onnx")
    tflite_path = write_reference_model(tmp_path, "tflite")
    assert onnx_path.suffix == ".onnx" and tflite_path.read_bytes()[4:8] == b"TFL3"
    with pytest.raises(ValueError, match="unknown model format"):
        write_reference_model(tmp_path, "pt")


def test_agent_modules_do_not_need_onnx_torch_or_the_host():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("onnx", "torch", "pymoo") or name.startswith("fleetnas.host"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from fleetnas.agent import runtimes
        from fleetnas.agent.board import device_state, fingerprint
        from fleetnas.agent.measure import reference_model, timing, worker, worker_child
        reference_model.build_onnx_bytes(); reference_model.build_tflite_bytes()
        print(sorted(i.name for i in runtimes.runtime_infos() if i.available))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "onnxruntime" in out.stdout


def test_missing_runtime_raises_with_the_install_hint():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("ai_edge_litert", "tflite_runtime"):
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        from fleetnas.agent import runtimes
        from fleetnas.agent.errors import RuntimeUnavailable
        info = [i for i in runtimes.runtime_infos() if i.name == "litert"][0]
        assert not info.available and "pip install 'fleetnas[litert]'" in info.message, info
        try:
            runtimes.require("litert")
        except RuntimeUnavailable as exc:
            print("RAISED", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "RAISED runtime 'litert' not installed" in out.stdout
    assert "installed: onnxruntime" in out.stdout and "pip install 'fleetnas[litert]'" in out.stdout


def test_isolated_probe_matches_in_process_without_importing_runtimes_here():
    code = textwrap.dedent("""
        import sys
        from fleetnas.agent import runtimes
        infos = runtimes.runtime_infos(isolated=True)
        assert not any(m in sys.modules for m in ("onnxruntime", "ai_edge_litert")), "imported in the agent"
        print(repr(infos))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr(runtimes.runtime_infos())


def test_unknown_runtime_name():
    with pytest.raises(InvalidRequest, match="use one of onnxruntime, litert"):
        runtimes.require("tensorrt")
