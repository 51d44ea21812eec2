"""Runtimes and power meters plug in through entry points, without editing fleetnas.

The plug-in is a real installed distribution (a ``.dist-info`` with ``entry_points.txt`` on the path), found by
importlib.metadata exactly as a pip-installed package would be; the worker processes find it the same way.
"""
import hashlib
import textwrap

import pytest

from agent_harness import FAST_TIMING
from fleetnas.agent import runtimes
from fleetnas.agent.app import make_service
from fleetnas.agent.errors import InvalidRequest
from fleetnas.agent.measure.reference_model import write_reference_model
from fleetnas.agent.plugins import Registry
from fleetnas.agent.power.detect import METERS, PowerConfig, detect_meters, select_meter
from fleetnas.agent.records import Outcome, RuntimeOptions, TimingConfig
from fleetnas.agent.store.model_store import ModelStore

PLUGIN = '''
from fleetnas.agent.power.base import INSTANT, PowerMeter, SensorUnavailable, read_sysfs_number, under_root, sysfs_root
from fleetnas.agent.runtimes.onnx import OnnxRuntime


class OnnxCopyRuntime(OnnxRuntime):
    name = "onnx-copy"


class BenchSupplyMeter(PowerMeter):
    """A lab bench supply that writes its output power in watts to a file."""
    name = "bench-supply"
    kind = INSTANT
    units = "W"

    def __init__(self, root=None):
        self.path = under_root(sysfs_root(root), "run/bench_supply_w")
        try:
            read_sysfs_number(self.path)
        except Exception:
            raise SensorUnavailable("no bench supply file") from None
        super().__init__(self.path, ("supply",), "supply")

    def _read(self):
        return read_sysfs_number(self.path)
'''
ENTRY_POINTS = '''
[fleetnas.runtimes]
onnx-copy = fleetnas_bench_plugin:OnnxCopyRuntime

[fleetnas.power_meters]
bench-supply = fleetnas_bench_plugin:BenchSupplyMeter
'''


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "fleetnas_bench_plugin").mkdir(parents=True)
    (site / "fleetnas_bench_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist = site / "fleetnas_bench_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fleetnas-bench-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # the worker processes see it too
    return site


def test_a_runtime_plugs_in_and_measures_through_the_worker(installed_plugin, tmp_path):
    assert runtimes.names()[:2] == ["onnxruntime", "litert"] and "onnx-copy" in runtimes.names()
    info = {i.name: i for i in runtimes.runtime_infos()}["onnx-copy"]
    assert info.available and "CPUExecutionProvider" in info.providers
    assert runtimes.get("onnx-copy").model_formats == ("onnx",)
    with pytest.raises(InvalidRequest, match="runtime 'onnx-copy' runs onnx models, not tflite"):
        runtimes.for_format("onnx-copy", "tflite")

    service = make_service(ModelStore(tmp_path / "store", quota_bytes=2**24), tmp_path / "cache",
                           {"power": {"meter": "none"}})
    path = write_reference_model(tmp_path / "models", "onnx", width=16)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    upload = service.begin_upload(sha, len(data), "onnx")
    upload.write(data)
    upload.commit()
    result = service.measure(sha, "onnx-copy", RuntimeOptions(), TimingConfig(**FAST_TIMING))
    assert result.outcome in (Outcome.OK, Outcome.UNSTABLE), result.message
    assert result.config.runtime == "onnx-copy" and result.overall.median_ms > 0


def test_a_power_meter_plugs_in_and_is_selected_by_name(installed_plugin, tmp_path):
    board = tmp_path / "board"
    (board / "run").mkdir(parents=True)
    (board / "run" / "bench_supply_w").write_text("4.5\n")
    assert "bench-supply" in METERS.names() and METERS.names()[0] == "jetson"  # built-ins keep probing order
    meter, info = select_meter(str(board), PowerConfig(meter="bench-supply"))
    assert info.name == "bench-supply" and info.readable and info.sample_rate_hz > 0
    assert meter.read() == 4.5
    assert "bench-supply" in [i.name for i in detect_meters(str(board))]


def test_unknown_names_list_the_choices():
    with pytest.raises(InvalidRequest, match="unknown runtime 'tvm': use one of onnxruntime, litert"):
        runtimes.get("tvm")
    with pytest.raises(ValueError, match="power.meter 'ina999' is not one of jetson, rpi5"):
        PowerConfig(meter="ina999")


def test_a_broken_plugin_is_reported_not_raised(monkeypatch):
    registry = Registry("fleetnas.test_nothing", {"gone": "fleetnas_no_such_module:Thing"}, "widget")
    with pytest.raises(Exception, match="widget 'gone' could not be loaded .*'fleetnas.test_nothing'"):
        registry.load("gone")


def test_registered_entry_points_resolve_to_the_builtins():
    """pyproject registers the built-ins; an installed checkout must resolve them through the entry points."""
    for registry in (runtimes.RUNTIMES, METERS):
        eps = registry._installed()
        if not eps:
            pytest.skip("fleetnas is not pip-installed here (no entry points); the built-in tables are used")
        for name, target in registry.builtins.items():
            assert name in eps and eps[name].value == target, f"{name} differs from [project.entry-points]"
