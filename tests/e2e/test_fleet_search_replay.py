"""Resuming a joint run rebuilds its search by replaying the journaled calls: the joint search must propose exactly
what it proposed before, given the same calls in the same order, in another process too (other hash seed), with its
default predictor families and results told out of order as a fleet returns them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from fleetnas.host.search.fleet import FleetSearch
from fleetnas.host.search.fleet_bench import FleetTable
from fleetnas.host.search.pareto import Objective

ACCURACY = Objective("acc", True)
DEVICES = [Objective("lat_a"), Objective("lat_b")]
PARAMS = ["p0", "p1", "p2", "p3"]


def write_table(path):
    rng = np.random.default_rng(0)
    lines = [",".join(PARAMS + ["acc", "lat_a", "lat_b"])]
    for p0 in range(5):
        for p1 in range(4):
            for p2 in range(4):
                for p3 in range(3):
                    size = p0 + 2 * p1 + p2 * p3
                    acc = 0.5 + 0.03 * size - 0.002 * size ** 2 + 0.01 * rng.standard_normal()
                    lines.append(f"{p0},{p1},{p2},{p3},{acc:.5f},{1 + size + 0.3 * p3:.4f},"
                                 f"{2 + 0.5 * size + p0 ** 2 * 0.2:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def new_search(table):
    return FleetSearch(table.space, ACCURACY, [], seed=5, budget=24, max_validations=40, n_init=8,
                       n_random_pool=200)


def drive(table):
    """Ask, validate, and tell the costs in a shuffled order (a few failing), logging every call."""
    search, log, queue, rng = new_search(table), [], [], np.random.default_rng(1)
    for d in DEVICES:
        search.add_class(d, 24)
        log.append(["add_class", d.name])
    while not search.finished:
        proposals = search.ask(3)
        log.append(["ask", 3, [[p.key, p.validate, list(p.classes)] for p in proposals]])
        if not proposals and not queue:
            break
        for p in proposals:
            if p.validate:
                search.tell_accuracy(p.key, table.value("acc", p.key))
                log.append(["accuracy", p.key])
            queue += [(p.key, c) for c in p.classes]
        for i in sorted(rng.choice(len(queue), int(rng.integers(1, len(queue) + 1)), replace=False), reverse=True):
            key, c = queue.pop(i)
            if rng.random() < 0.05:
                search.fail(key, c)
                log.append(["fail", key, c])
            else:
                search.tell_cost(key, c, table.value(c, key))
                log.append(["cost", key, c])
    return log, {"validations": search.n_validations, "rounds": search.round}


REPLAY = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[3])
    from test_fleet_search_replay import ACCURACY, DEVICES, PARAMS, new_search
    from fleetnas.host.search.fleet_bench import FleetTable
    table = FleetTable.from_csv(sys.argv[1], PARAMS, ACCURACY, DEVICES)
    search, by_name = new_search(table), {d.name: d for d in DEVICES}
    for call in json.load(open(sys.argv[2])):
        if call[0] == "add_class":
            search.add_class(by_name[call[1]], 24)
        elif call[0] == "ask":
            got = [[p.key, p.validate, list(p.classes)] for p in search.ask(call[1])]
            assert got == call[2], ("another proposal in round", search.round)
        elif call[0] == "accuracy":
            search.tell_accuracy(call[1], table.value("acc", call[1]))
        elif call[0] == "cost":
            search.tell_cost(call[1], call[2], table.value(call[2], call[1]))
        else:
            search.fail(call[1], call[2])
    print(json.dumps({"validations": search.n_validations, "rounds": search.round}))
""")


def test_the_joint_search_replays_its_calls_in_another_process(tmp_path):
    table_path = write_table(tmp_path / "table.csv")
    table = FleetTable.from_csv(str(table_path), PARAMS, ACCURACY, DEVICES)
    log, state = drive(table)
    asks = [c for c in log if c[0] == "ask"]
    assert sum(1 for c in log if c[0] == "cost") > 30 and len(asks) >= 4    # model-based rounds, not only the start
    (tmp_path / "log.json").write_text(json.dumps(log))
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", REPLAY, str(table_path), str(tmp_path / "log.json"),
                          os.path.dirname(__file__)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == state
    assert state["validations"] <= 40
