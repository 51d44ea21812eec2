"""Tactics through the ask/tell engine: seeded, never a duplicate, 2 and 3 objectives, min and max, failures."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import pytest
from conftest import FAST_LINAS

from fleetnas.host.search.benchmark import run_search
from fleetnas.host.search.engine import Search, SearchError
from fleetnas.host.search.pareto import Objective
from fleetnas.host.errors import UsageError
from fleetnas.host.search.linas import LinasOptions
from fleetnas.host.search.options import OptionError, from_mapping
from fleetnas.host.search.registry import TACTICS
from fleetnas.host.search.tactic import Tactic, make_tactic, tactic_options

OPTIONS = {"linas": FAST_LINAS, "nsga2": {"pop_size": 20}, "random": {}}


@pytest.mark.parametrize("tactic", ["random", "nsga2", "linas"])
def test_no_duplicates_and_seeded(toy_problem, tactic):
    runs = [run_search(toy_problem, tactic, seed=3, budget=60, batch=10, options=OPTIONS[tactic]) for _ in range(2)]
    keys = [[e.key for e in r.evaluations()] for r in runs]
    assert len(keys[0]) == 60 and len(set(keys[0])) == 60  # budget spent on distinct configurations only
    assert keys[0] == keys[1]                              # same seed, same run
    other = run_search(toy_problem, tactic, seed=4, budget=60, batch=10, options=OPTIONS[tactic])
    assert [e.key for e in other.evaluations()] != keys[0]


@pytest.mark.parametrize("tactic", ["random", "nsga2", "linas"])
def test_three_objectives_and_front(toy_problem_3obj, tactic):
    search = run_search(toy_problem_3obj, tactic, seed=0, budget=40, batch=10, options=OPTIONS[tactic])
    front = search.front()
    assert search.n_evaluated == 40 and 0 < len(front) <= 40
    values = np.array([[e.values["acc"], e.values["latency_ms"], e.values["energy_mj"]] for e in front])
    for i, a in enumerate(values):  # no front member is beaten on all three (acc max, the others min)
        better = (values[:, 0] >= a[0]) & (values[:, 1] <= a[1]) & (values[:, 2] <= a[2])
        strictly = (values[:, 0] > a[0]) | (values[:, 1] < a[1]) | (values[:, 2] < a[2])
        assert not np.any(better & strictly)


def test_linas_beats_random_on_the_toy_problem(toy_problem):
    # The toy front is easy for a predictor (near-additive objectives): LINAS must find more of it than random.
    from fleetnas.host.search.pareto import non_dominated_mask, to_minimization
    import itertools

    space, objectives = toy_problem.space, toy_problem.objectives
    all_configs = [dict(zip(space.names, ops)) for ops in itertools.product(*[p.options for p in space.params])]
    F = to_minimization(np.array([[toy_problem.evaluate(c)[o.name] for o in objectives] for c in all_configs]),
                        objectives)
    true_keys = {space.key(c) for c, keep in zip(all_configs, non_dominated_mask(F)) if keep}
    found = {}
    for tactic in ("random", "linas"):
        search = run_search(toy_problem, tactic, seed=0, budget=80, batch=10, options=OPTIONS[tactic])
        found[tactic] = len(true_keys & {e.key for e in search.evaluations()})
    assert found["linas"] > found["random"]


def test_linas_reports_predictor_quality_each_round(toy_problem):
    search = run_search(toy_problem, "linas", seed=1, budget=50, batch=10, options=FAST_LINAS)
    reports = search.round_reports
    assert len(reports) >= 3
    for report in reports:
        assert report["n_train"] >= 10 and report["total_s"] >= 0
        for obj in report["objectives"]:
            assert obj["chosen"] in FAST_LINAS["families"]
            for score in obj["scores"].values():
                assert -1.0 <= score["kendall_tau"] <= 1.0 and score["mape"] >= 0.0
    # The latency is additive: its chosen predictor ranks the held-out configs (the search's own latest batches,
    # a narrow hard region) clearly better than chance.
    latency = reports[-1]["objectives"][1]
    assert latency["scores"][latency["chosen"]]["kendall_tau"] > 0.5


@pytest.mark.parametrize("tactic", ["random", "nsga2", "linas"])
def test_failures_are_not_reproposed_and_out_of_order_tells(toy_problem, tactic):
    search = Search(toy_problem.space, toy_problem.objectives, tactic=tactic, seed=2, budget=50,
                    tactic_options=OPTIONS[tactic])
    seen, failed = set(), set()
    rng = np.random.default_rng(0)
    while not search.finished:
        batch = search.ask(7) or search.pending()
        assert batch, "nothing to ask and nothing pending before the budget is spent"
        for p in rng.permutation(len(batch)):  # results arrive out of order
            proposal = batch[p]
            if proposal.key not in {q.key for q in search.pending()}:
                continue
            seen.add(proposal.key)
            if proposal.trial_id % 9 == 0:
                search.fail(proposal.trial_id, "OOM on board")
                failed.add(proposal.key)
            else:
                search.tell(proposal.trial_id, toy_problem.evaluate(proposal.config))
    assert search.n_proposed == 50 == len(seen)
    assert search.n_evaluated == 50 - len(failed)
    assert not failed & {e.key for e in search.evaluations()}


def test_bad_use_is_reported_clearly(toy_problem):
    search = Search(toy_problem.space, toy_problem.objectives, tactic="random", seed=0, budget=5)
    (p,) = search.ask(1)
    with pytest.raises(SearchError, match="missing value for objective 'latency_ms'"):
        search.tell(p.trial_id, {"acc": 1.0})
    with pytest.raises(SearchError, match="is nan"):
        search.tell(p.trial_id, {"acc": float("nan"), "latency_ms": 1.0})
    search.tell(p.trial_id, {"acc": 1.0, "latency_ms": 2.0})
    with pytest.raises(SearchError, match="already has a result"):
        search.tell(p.trial_id, {"acc": 1.0, "latency_ms": 2.0})
    with pytest.raises(SearchError, match="never proposed"):
        search.fail(999, "x")
    with pytest.raises(UsageError, match="unknown tactic 'bogus'; available: linas, nsga2, random"):
        make_tactic("bogus", toy_problem.space, toy_problem.objectives)
    with pytest.raises(ValueError, match="no option"):
        make_tactic("linas", toy_problem.space, toy_problem.objectives, options={"bogus": 1})
    with pytest.raises(ValueError, match=">= 2 objectives"):
        make_tactic("random", toy_problem.space, [Objective("acc", True)])
    assert {"linas", "random", "nsga2"} <= set(TACTICS.names())


def test_families_not_chosen_are_refitted_every_rescore_rounds(toy_problem):
    options = {**FAST_LINAS, "rescore_every": 3}
    search = run_search(toy_problem, "linas", seed=2, budget=40, batch=10, options=options)
    tactic = search.tactic
    assert tactic.round >= 2
    before = [dict(m) for m in tactic._models]
    round_no = tactic.round
    tactic._run_round(search.history, 10)
    for j, models in enumerate(tactic._models):
        name = search.round_reports[-1]["objectives"][j]["chosen"]
        for family, model in models.items():
            kept = model is before[j].get(family)
            # Refitted: the chosen family always, every family on rounds divisible by rescore_every.
            assert kept == (family != name and round_no % 3 != 0), (family, name, round_no)


def test_options_from_the_untyped_dict_of_the_cli_and_of_stored_runs():
    # What --tactic-option gives (JSON values, else strings) and what run.json stores give the same options.
    typed = tactic_options("linas", {"n_init": 12, "families": ["ridge", "svr"], "std_scale": 1})
    assert typed == LinasOptions(n_init=12, families=("ridge", "svr"), std_scale=1.0)
    assert tactic_options("linas", {"n_init": "12", "families": "ridge,svr", "std_scale": "1"}) == typed
    assert tactic_options("linas", {"n_init": 12.0, "families": ("ridge", "svr")}) == LinasOptions(
        n_init=12, families=("ridge", "svr"))
    assert tactic_options("nsga2", None).pop_size == 50 and tactic_options("random", {}) is not None


@pytest.mark.parametrize("tactic,options,message", [
    ("linas", {"n_inti": 5}, "tactic 'linas' has no option(s) n_inti; its options: n_init=20, families=ridge,svr"),
    ("linas", {"n_init": "many"}, "tactic 'linas' option n_init: expected an integer, got 'many'"),
    ("linas", {"n_init": 2.5}, "option n_init: expected an integer"),
    ("linas", {"n_init": True}, "option n_init: expected an integer"),
    ("linas", {"families": ["ridge", "forest"]}, "families: unknown predictor(s) forest; available: gp, mlp"),
    ("linas", {"families": []}, "families: give at least one"),
    ("linas", {"inner_pop": 1}, "inner_pop=1: must be >= 2"),
    ("nsga2", {"pop_size": "x"}, "tactic 'nsga2' option pop_size: expected an integer"),
    ("random", {"n_init": 3}, "tactic 'random' has no option(s) n_init; its options: "),
])
def test_bad_options_name_the_field_and_the_valid_ones(tactic, options, message):
    with pytest.raises(OptionError) as info:
        tactic_options(tactic, options)
    assert message in str(info.value)


def test_an_entry_point_plugs_in_a_tactic_without_editing_fleetnas(toy_problem, monkeypatch):
    @dataclass(frozen=True)
    class FirstOptions:
        stride: int = 1

    class FirstUnseen(Tactic):
        """Walks the space in gene order, ``stride`` apart."""

        name = "first-unseen"
        Options = FirstOptions

        def propose(self, n, history):
            out, i = [], 0
            while len(out) < n and i < self.space.size:
                genes = np.unravel_index(i, tuple(self.space.n_options))
                config = self.space.from_genes(np.array(genes))
                if not history.seen(self.space.key(config)) and config not in out:
                    out.append(config)
                i += self.options.stride
            return out

    class FakeEntryPoint:
        name = "first-unseen"

        def load(self):
            return FirstUnseen

    monkeypatch.setattr(TACTICS, "_installed", lambda: {"first-unseen": FakeEntryPoint()})
    assert "first-unseen" in TACTICS.names()
    search = run_search(toy_problem, "first-unseen", seed=0, budget=10, batch=4, options={"stride": "2"})
    assert isinstance(search.tactic, FirstUnseen) and search.tactic.options == FirstOptions(stride=2)
    assert search.n_evaluated == 10
    with pytest.raises(OptionError, match="has no option.*stride=1"):
        run_search(toy_problem, "first-unseen", seed=0, budget=10, options={"step": 2})


def test_registered_entry_points_resolve_to_the_builtins():
    """pyproject registers the built-in tactics; an installed checkout resolves them through the entry points."""
    eps = TACTICS._installed()
    if not eps:
        pytest.skip("fleetnas is not pip-installed here (no entry points); the built-in table is used")
    for name in ("linas", "nsga2", "random"):
        assert name in eps, f"{name} missing from [project.entry-points.\"fleetnas.tactics\"]"
        assert issubclass(eps[name].load(), Tactic)


@dataclass(frozen=True)
class Needs:
    steps: int
    names: Tuple[str, ...] = ("a",)
    verbose: bool = False


def test_options_a_plug_in_must_give():
    with pytest.raises(OptionError, match=r"tactic 'x' needs option\(s\) steps; its options: steps=\(required\), "
                                          r"names=a, verbose=False"):
        from_mapping(Needs, {}, "tactic 'x'")
    assert from_mapping(Needs, {"steps": 3, "names": ["b", "c"]}, "tactic 'x'") == Needs(3, ("b", "c"))
    with pytest.raises(OptionError, match="option verbose: expected true or false, got 'yes'"):
        from_mapping(Needs, {"steps": 3, "verbose": "yes"}, "tactic 'x'")
