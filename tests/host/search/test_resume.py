"""Resume: a run stopped after K results and reopened from its journal ends exactly like an uninterrupted run."""
from __future__ import annotations

import pytest
from conftest import FAST_LINAS

from fleetnas.host.search.benchmark import run_search
from fleetnas.host.search.engine import Search, SearchError
from fleetnas.host.store.journal import Journal

OPTIONS = {"linas": FAST_LINAS, "nsga2": {"pop_size": 20}, "random": {}}


@pytest.mark.parametrize("tactic,stop_after", [("random", 17), ("nsga2", 33), ("linas", 27)])
def test_resume_equals_uninterrupted(tmp_path, toy_problem, tactic, stop_after):
    budget, batch = 60, 10
    straight = run_search(toy_problem, tactic, seed=5, budget=budget, batch=batch, options=OPTIONS[tactic])

    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    cut = run_search(toy_problem, tactic, seed=5, budget=budget, batch=batch, options=OPTIONS[tactic],
                     journal=journal, stop_after=stop_after)  # "killed" mid-batch
    assert cut.n_evaluated == stop_after and cut.n_pending > 0
    journal.close()

    reopened = Journal(path)
    resumed = run_search(toy_problem, tactic, seed=5, budget=budget, batch=batch, options=OPTIONS[tactic],
                         journal=reopened, resume=True)
    assert [e.key for e in resumed.evaluations()] == [e.key for e in straight.evaluations()]
    assert [e.values for e in resumed.evaluations()] == [e.values for e in straight.evaluations()]
    trials = reopened.trials(resumed.run_id)
    assert len(trials) == budget and len({t.key for t in trials}) == budget  # nothing proposed or evaluated twice
    assert all(t.state == "done" for t in trials)
    if tactic == "linas":
        def decisions(reports):  # everything but wall/cpu times
            return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in reports]

        assert decisions(reopened.round_reports(resumed.run_id)) == decisions(resumed.round_reports)
        assert decisions(resumed.round_reports) == decisions(straight.round_reports)


def test_journal_records_every_proposal_and_result_as_it_happens(tmp_path, toy_problem):
    path = tmp_path / "j.sqlite"
    search = Search(toy_problem.space, toy_problem.objectives, tactic="random", seed=0, budget=10,
                    journal=Journal(path), run="r")
    batch = search.ask(4)
    search.tell(batch[0].trial_id, toy_problem.evaluate(batch[0].config))
    search.fail(batch[1].trial_id, "TIMEOUT on rpi4-02")
    # A second connection (another process) sees it all immediately.
    other = Journal(path)
    run_id, settings = other.find_run("r")
    assert settings["tactic"] == "random" and settings["budget"] == 10
    states = {t.trial_id: t.state for t in other.trials(run_id)}
    assert states == {batch[0].trial_id: "done", batch[1].trial_id: "failed",
                      batch[2].trial_id: "pending", batch[3].trial_id: "pending"}
    assert [e.kind for e in other.events(run_id)] == ["ask", "result", "result"]
    failed = next(t for t in other.trials(run_id) if t.state == "failed")
    assert failed.error == "TIMEOUT on rpi4-02" and failed.values is None


def test_resume_refuses_other_settings_and_existing_run_without_resume(tmp_path, toy_problem):
    path = tmp_path / "j.sqlite"
    run_search(toy_problem, "random", seed=1, budget=20, batch=5, journal=Journal(path), stop_after=8)
    with pytest.raises(SearchError, match="already exists.*resume"):
        Search(toy_problem.space, toy_problem.objectives, tactic="random", seed=1, journal=Journal(path),
               run="random-seed1")
    with pytest.raises(SearchError, match="different settings \\(seed: 1 -> 2\\)"):
        Search(toy_problem.space, toy_problem.objectives, tactic="random", seed=2, journal=Journal(path),
               run="random-seed1", resume=True)
    # A larger budget is allowed on resume: the run continues further.
    longer = run_search(toy_problem, "random", seed=1, budget=30, batch=5, journal=Journal(path), resume=True)
    assert longer.n_evaluated == 30
