"""fleetnas's pytest plugin: hardware-in-the-loop tests that run once per board of a devices file.

    pytest -m hil --fleet devices.toml            # or: FLEETNAS_DEVICES=devices.toml pytest -m hil

A test that takes the ``fleet_device`` fixture (or ``fleet_client``) is marked ``hil`` and parametrized over every
``[[device]]`` of the file (the format of `fleetnas devices`, see fleetnas.host.fleet.devices); the test id is the
device name. With no file named, such tests are skipped with the reason. A device that is named but unreachable is
a failure, not a skip: the point of a HIL run is to notice that.

Registered for every pytest run through the ``pytest11`` entry point, so this module imports only the standard
library and pytest at load time; grpc, numpy and the devices parser are imported when a fleet test runs.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from fleetnas.host.fleet.devices import Device

ENV_VAR = "FLEETNAS_DEVICES"
NO_FLEET_REASON = f"no devices named: pass --fleet devices.toml or set {ENV_VAR} (see `fleetnas devices`)"
FLEET_FIXTURES = ("fleet_device", "fleet_client")
CONNECT_TIMEOUT_S = 15.0

# Short but complete timing for checks against boards: every phase runs, a measurement takes ~1-3 s.
HIL_TIMING = dict(warmup_runs=5, warmup_s=0.3, blocks=3, min_runs_per_block=10, min_block_s=0.2, timeout_s=120.0)

_devices_key = pytest.StashKey[object]() if hasattr(pytest, "StashKey") else None


def pytest_addoption(parser) -> None:
    group = parser.getgroup("fleetnas", "fleetnas hardware in the loop")
    group.addoption("--fleet", metavar="FILE", default=None,
                    help=f"devices TOML file whose boards the `hil` tests run against (default: ${ENV_VAR})")
    group.addoption("--fleet-connect-timeout", metavar="SECONDS", type=float, default=CONNECT_TIMEOUT_S,
                    help=f"how long a board may take to answer its first call (default {CONNECT_TIMEOUT_S:.0f} s)")
    group.addoption("--fleet-noisy", action="store_true", default=False,
                    help="the boards are shared machines (e.g. CI runners testing the plugin): accept measurements "
                         "flagged UNSTABLE and looser repeatability; never use this to qualify real boards")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "hil: hardware in the loop, run once per device of --fleet / $FLEETNAS_DEVICES")


def fleet_file(config) -> Optional[Path]:
    """The devices file named by --fleet, else by $FLEETNAS_DEVICES, else None."""
    value = config.getoption("fleet", default=None) or os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def fleet_devices(config) -> List["Device"]:
    """The devices of the fleet file (parsed once per run); [] when none is named. A bad file is a usage error."""
    cached = config.stash.get(_devices_key, None) if _devices_key is not None else None
    if cached is not None:
        return cached  # type: ignore[return-value]
    path = fleet_file(config)
    devices: List["Device"] = []
    if path is not None:
        from fleetnas.host.errors import FleetnasError
        from fleetnas.host.fleet.devices import load_devices
        try:
            devices = list(load_devices(path))
        except FleetnasError as exc:
            source = "--fleet" if config.getoption("fleet", default=None) else ENV_VAR
            raise pytest.UsageError(f"fleetnas: {source}: {exc}") from None
    if _devices_key is not None:
        config.stash[_devices_key] = devices
    return devices


def pytest_generate_tests(metafunc) -> None:
    if not any(name in metafunc.fixturenames for name in FLEET_FIXTURES):
        return
    devices = fleet_devices(metafunc.config)
    if devices:
        metafunc.parametrize("fleet_device", devices, ids=[d.name for d in devices])
    else:
        metafunc.parametrize("fleet_device", [pytest.param(None, marks=pytest.mark.skip(reason=NO_FLEET_REASON))],
                             ids=["no-fleet"])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    # Before `-m` selection runs: a fleet test is a hil test even when its author forgot the marker.
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in FLEET_FIXTURES):
            if item.get_closest_marker("hil") is None:
                item.add_marker(pytest.mark.hil)


@pytest.fixture
def fleet_device(request):
    """One device of the fleet (a fleetnas.host.fleet.devices.Device); parametrized by pytest_generate_tests."""
    return request.param


@pytest.fixture
def fleet_client(fleet_device, request):
    """A connected, authenticated AgentClient for ``fleet_device``.

    Errors (does not skip) when the board is unreachable or refuses the token: a named board must answer.
    """
    from fleetnas.host.errors import FleetnasError
    timeout_s = request.config.getoption("fleet_connect_timeout", default=CONNECT_TIMEOUT_S)
    client = None
    try:
        client = fleet_device.client()
        client.wait_ready(timeout_s=timeout_s)
        client.device_info(timeout_s=timeout_s)   # the first authenticated call: token and TLS problems show here
    except FleetnasError as exc:
        if client is not None:
            client.close()
        pytest.fail(f"device {fleet_device.name} ({fleet_device.address}): {exc}", pytrace=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def fleet_reference_model(tmp_path_factory) -> Path:
    """The agent's own ONNX reference model (an MLP chain, fixed seed), written once per session."""
    from fleetnas.host.fleet.contract import write_reference_model
    return write_reference_model(tmp_path_factory.mktemp("fleetnas-reference"), "onnx")


@dataclass(frozen=True)
class FleetTolerance:
    """How strict the HIL checks are: strict for boards, loose (--fleet-noisy) for shared CI machines."""
    allow_unstable: bool = False
    max_repeat_ratio: float = 2.0   # two runs of the same model: medians within this factor of each other


@pytest.fixture
def fleet_tolerance(request) -> FleetTolerance:
    if request.config.getoption("fleet_noisy", default=False):
        return FleetTolerance(allow_unstable=True, max_repeat_ratio=5.0)
    return FleetTolerance()


def hil_runtime(runtime: str = "onnxruntime", threads: int = 1):
    """How the HIL checks measure: HIL_TIMING, ``threads`` threads (a fleetnas.host.fleet.contract.RuntimeConfig)."""
    from fleetnas.host.fleet.contract import RuntimeConfig, TimingConfig
    return RuntimeConfig(runtime=runtime, threads=threads, timing=TimingConfig(**HIL_TIMING))


def latency_problems(result, *, max_median_ms: float, expect_runs: int = 0,
                     allow_unstable: bool = False) -> List[str]:
    """What is wrong with a MeasureResult as a latency measurement; [] when it is sane.

    Checks the outcome, that the statistics are ordered and finite, that the run count and the median are plausible,
    and that the result carries what a user needs to reproduce it (runtime config, device state). ``allow_unstable``
    accepts an UNSTABLE outcome (its numbers are filled) and checks the numbers as usual.
    """
    if result.outcome != "OK" and not (allow_unstable and result.outcome == "UNSTABLE"):
        return [f"outcome {result.outcome}: {result.message}"]
    if result.overall is None:
        return [f"outcome {result.outcome} without latency statistics: {result.message}"]
    s, problems = result.overall, []
    chain = [("min_ms", s.min_ms), ("median_ms", s.median_ms), ("p90_ms", s.p90_ms), ("p99_ms", s.p99_ms),
             ("max_ms", s.max_ms)]
    if not all(math.isfinite(v) for _, v in chain) or s.min_ms <= 0:
        problems.append(f"non-positive or non-finite latency statistics: {chain}")
    elif any(a[1] > b[1] for a, b in zip(chain, chain[1:])):
        problems.append(f"latency statistics out of order: {chain}")
    if not 0 < s.median_ms <= max_median_ms:
        problems.append(f"median {s.median_ms:.3f} ms outside (0, {max_median_ms}] ms")
    if s.n < expect_runs:
        problems.append(f"only {s.n} timed runs, expected >= {expect_runs}")
    if not (math.isfinite(s.cv) and s.cv >= 0):
        problems.append(f"coefficient of variation {s.cv} is not a finite non-negative number")
    if not (result.config.runtime and result.config.runtime_version and result.config.intra_op_threads >= 1):
        problems.append("runtime config incomplete (runtime, version, threads): the number cannot be reproduced")
    if result.state_before_unix_ns <= 0 or result.state_after_unix_ns <= 0:
        problems.append("device state before/after the run was not recorded")
    if result.peak_rss_bytes <= 0:
        problems.append("peak RSS of the worker was not reported")
    return problems


def describe_devices(devices: Sequence["Device"]) -> str:
    return ", ".join(f"{d.name} ({d.device_class}, {d.address})" for d in devices) or "none"


def pytest_report_header(config) -> Optional[str]:
    path = fleet_file(config)
    if path is None:
        return None
    try:
        return f"fleetnas fleet {path}: {describe_devices(fleet_devices(config))}"
    except pytest.UsageError as exc:
        return str(exc)
