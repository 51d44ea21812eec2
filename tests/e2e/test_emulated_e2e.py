"""A dry run: emulating agents answer from a table covering the tiny space (latency and energy), three objectives."""
from __future__ import annotations

import contextlib
import itertools

from agent_harness import running_agent
from conftest import E2E_TIMING
from fleet_helpers import devices_toml, write_table

from fleetnas.agent.measure.emulate import EmulationTable, make_emulated_measure_fn
from fleetnas.host.fleet.devices import parse_devices
from fleetnas.host.fleet.dispatcher import RuntimeConfig
from fleetnas.host.report.render import write_report
from fleetnas.host.run.controller import SearchController, SearchSettings


def tiny_table(path, tiny):
    names = [p.name for p in tiny.space.params]
    rows = []
    for values in itertools.product(*[p.options for p in tiny.space.params]):
        config = dict(zip(names, values))
        macs = tiny.macs(config)
        rows.append({**config, "lat_ms": round(macs / 2e6, 6), "energy_mj": round(macs / 1e6, 6)})
    return write_table(path, rows)


def test_dry_run_with_energy_on_emulating_agents(tmp_path, tiny, export_dir):
    table = EmulationTable.from_csv(tiny_table(tmp_path / "tiny.csv", tiny), [p.name for p in tiny.space.params],
                                    "lat_ms", "energy_mj")
    settings = SearchSettings("tiny", objectives=("accuracy", "latency", "energy"), budget=4, seed=0,
                              tactic="random", runtime=RuntimeConfig(energy=True, timing=tuple(sorted(
                                  E2E_TIMING.items()))))
    with contextlib.ExitStack() as stack:
        agents = [stack.enter_context(running_agent(tmp_path / f"a{i}", measure_fn=make_emulated_measure_fn(
            table, time_scale=0.2))) for i in range(2)]
        registry = parse_devices(devices_toml(agents, "emu"), tmp_path / "devices.toml")
        controller = SearchController(settings, tiny, registry, tmp_path / "run", None, export_dir=export_dir)
        controller.run()
        from fleetnas.host.run.progress import render
        from rich.console import Console
        console = Console(width=200, record=True)
        console.print(render(controller))
        screen = console.export_text()
        controller.close()
    assert "dev0" in screen and "emu: 4 evaluated" in screen
    data = write_report(tmp_path / "run")
    assert data["candidates_evaluated"] == 4 and data["failed"]["emu"] == 0
    for p in data["fronts"]["emu"]:
        macs = tiny.macs(p["config"])
        assert abs(p["latency_ms"] - macs / 2e6) < 1e-5 and abs(p["energy_mj"] - macs / 1e6) < 1e-5
    assert "energy mJ" in data["tables"]["emu"]
    points = (tmp_path / "run" / "emu" / "points.csv").read_text()
    assert "energy_mj" in points.splitlines()[0] and ",True," in points   # emulated results are marked
