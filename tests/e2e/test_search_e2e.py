"""A seeded search on the real tiny super-network against real agents on loopback, end to end."""
from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
from agent_harness import running_agent
from conftest import E2E_TIMING
from fleet_helpers import devices_toml

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.devices import parse_devices
from fleetnas.host.fleet.dispatcher import RuntimeConfig
from fleetnas.host.fleet.measurements import MeasurementStore
from fleetnas.host.report.fronts import run_fronts
from fleetnas.host.report.pick import pick_from_run
from fleetnas.host.report.render import write_report
from fleetnas.host.run.controller import SearchController, SearchSettings
from fleetnas.host.store.run_store import RunStore

RUNTIME = RuntimeConfig(threads=1, timing=tuple(sorted(E2E_TIMING.items())))
SLOWER = RuntimeConfig(threads=1, timing=tuple(sorted({**E2E_TIMING, "min_block_s": 0.3}.items())))
# Every test proposes its first BUDGET configurations in one batch with seed 0, so the session's tiny super-network
# evaluates and exports them once (accuracy and export dominate the cost on a shared 2-core box).
BUDGET = 4


@contextlib.contextmanager
def fleet(tmp_path, n, device_class="cpu"):
    with contextlib.ExitStack() as stack:
        agents = [stack.enter_context(running_agent(tmp_path / f"agent{i}")) for i in range(n)]
        yield agents, parse_devices(devices_toml(agents, device_class), tmp_path / "devices.toml")


def live_front_keys(controller, device_class):
    """The front the live run's Search holds."""
    return sorted(e.key for e in controller.classes[device_class].search.front())


def replayed_front_keys(run_dir, settings, tiny, device_class):
    """The front of a fresh Search replaying the journal (the search engine's own resume path)."""
    from fleetnas.host.search.engine import Search
    from fleetnas.host.search.pareto import Objective
    with RunStore.open(run_dir) as store:
        search = Search(tiny.space, [Objective("accuracy", True), Objective("latency_ms")], tactic=settings.tactic,
                        seed=settings.seed, budget=settings.budget, journal=store.journal, run=device_class,
                        resume=True)
        return sorted(e.key for e in search.front())


def test_seeded_search_two_agents_then_replay_gives_the_same_front(tmp_path, tiny, export_dir):
    settings = SearchSettings("tiny", budget=BUDGET, seed=0, tactic="linas", runtime=RUNTIME)
    with fleet(tmp_path, 2) as (agents, registry):
        cache = MeasurementStore(tmp_path / "cache.sqlite")
        controller = SearchController(settings, tiny, registry, tmp_path / "run", cache, export_dir=export_dir)
        controller.run()
        controller.close()
        live = live_front_keys(controller, "cpu")
        per_agent = [a.service.queue_stats().measurements_done for a in agents]
        status = {n: s.uploads for n, s in controller.dispatcher.status.items()}
        # the same search again in a new folder: the measurement cache answers, no board measures anything twice
        second = SearchController(settings, tiny, registry, tmp_path / "run2", cache, export_dir=export_dir)
        second.run()
        second.close()
        assert [a.service.queue_stats().measurements_done for a in agents] == per_agent
        cache.close()
    rerun = write_report(tmp_path / "run2", plots=False)
    assert rerun["measurements"] == 0 and rerun["cache_hits"] == BUDGET
    assert sum(per_agent) == BUDGET, per_agent
    assert sum(status.values()) == BUDGET                              # each model uploaded to one agent, once
    data = write_report(tmp_path / "run")
    assert data["candidates_evaluated"] == BUDGET and data["measurements"] == BUDGET and data["cache_hits"] == 0
    front = data["fronts"]["cpu"]
    assert front and sorted(tiny.key(p["config"]) for p in front) == live
    assert replayed_front_keys(tmp_path / "run", settings, tiny, "cpu") == live
    for p in front:
        assert 0.0 < p["accuracy"] <= 1.0 and p["latency_ms"] > 0
        assert p["accuracy"] == pytest.approx(tiny.accuracy(p["config"]))   # the real digits accuracy
    # the run folder: fronts, all points, plots, summary; and a second replay gives the same again
    for name in ("front.csv", "front.json", "points.csv", "points.json", "front.png", "hypervolume.png"):
        assert (tmp_path / "run" / "cpu" / name).stat().st_size > 0, name
    points = json.loads((tmp_path / "run" / "cpu" / "points.json").read_text())
    assert len(points) + data["failed"]["cpu"] == BUDGET
    assert {"overall", "config", "device_id", "phases"} <= set(points[0]["measurement"])   # every statistic
    assert data["measurements_per_device"] and sum(data["measurements_per_device"].values()) == BUDGET
    again = write_report(tmp_path / "run", plots=False)
    assert again["fronts"] == data["fronts"] and again["hypervolume"] == data["hypervolume"]
    assert rerun["fronts"] == data["fronts"]
    # `fleetnas export DIR --device NAME --pick K` picks from the same front, by class or by device name
    picked = pick_from_run(tmp_path / "run", "dev1", len(front) - 1)
    assert picked.device_class == "cpu" and picked.config == front[-1]["config"] and picked.supernet == "tiny"
    with pytest.raises(UsageError, match="front has"):
        pick_from_run(tmp_path / "run", "cpu", len(front))
    with pytest.raises(UsageError, match="device classes: cpu"):
        pick_from_run(tmp_path / "run", "gpu", 0)


def test_agent_killed_mid_measurement_its_candidate_goes_to_the_other(tmp_path, tiny, export_dir):
    settings = SearchSettings("tiny", budget=BUDGET, seed=0, tactic="random", runtime=SLOWER)
    with fleet(tmp_path, 2) as (agents, registry):
        controller = SearchController(settings, tiny, registry, tmp_path / "run", None, export_dir=export_dir,
                                      dispatcher_options=dict(backoff_s=(0.05, 0.5)))
        killed = {}

        def kill_first_measuring_agent():   # a real agent dies while it measures a candidate
            while not killed and not done.is_set():
                d = controller.dispatcher
                for i, name in enumerate(("dev0", "dev1")):
                    if d is not None and d.status[name].state == "measuring":
                        agents[i].stop()
                        killed.update(name=name, index=i)
                        return
                time.sleep(0.005)

        done = threading.Event()
        watcher = threading.Thread(target=kill_first_measuring_agent, daemon=True)
        watcher.start()
        controller.run()
        done.set()
        watcher.join()
        status = {n: (s.state, s.last_error) for n, s in controller.dispatcher.status.items()}
        controller.close()
        with RunStore.open(tmp_path / "run") as store:
            rows = store.measurements(["cpu"])
    assert killed, "no agent was seen measuring"
    survivor = "dev1" if killed["name"] == "dev0" else "dev0"
    assert "unreachable" in status[killed["name"]][1] or "CANCELLED" in status[killed["name"]][1].upper()
    assert len(rows) == BUDGET and all(r.usable for r in rows), [(r.outcome, r.response.get("message")) for r in rows]
    assert {r.device_name for r in rows} == {survivor}   # the interrupted candidate too was measured by the survivor


def test_two_device_classes_share_accuracy_and_models(tmp_path, tiny, export_dir):
    settings = SearchSettings("tiny", budget=BUDGET, seed=0, tactic="random", runtime=RUNTIME, inflight_per_device=4)
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(running_agent(tmp_path / "a"))
        b = stack.enter_context(running_agent(tmp_path / "b"))
        registry = parse_devices(devices_toml([a], "big") + devices_toml([b], "little").replace("dev0", "dev1"),
                                 tmp_path / "devices.toml")
        controller = SearchController(settings, tiny, registry, tmp_path / "run", None, export_dir=export_dir)
        evaluated = []
        original = tiny.evaluate   # tiny is its own evaluator (evaluator(None) returns it)
        tiny.evaluate = lambda config: evaluated.append(tiny.key(config)) or original(config)
        try:
            controller.run()
        finally:
            del tiny.evaluate
            controller.close()
    fronts = run_fronts(tmp_path / "run")
    assert set(fronts) == {"big", "little"}
    assert all(len(f.points) + f.failed == BUDGET for f in fronts.values())
    # same seed, same tactic: both classes propose the same configurations; accuracy was evaluated once for each
    keys = [sorted(p.config_key for p in f.points) for f in fronts.values()]
    assert keys[0] == keys[1] and sorted(evaluated) == keys[0]
    by_class = [{p.config_key: (p.accuracy, p.model_sha256) for p in f.points} for f in fronts.values()]
    assert by_class[0] == by_class[1]   # one accuracy and one exported model per sub-network, shared
