"""The search engine.

- `params` (Choice, Integer, ActiveIf), `cells` (cell DAGs, live ops) and `space` (SearchSpace: conditions, canonical
  keys, genes); `operators` (sampling, mutation, crossover, repair) and `encoding` (predictor features).
- `pareto`: Objective (name + direction), non-dominated sorting, exact hypervolume, min-max normalisation.
- `tactic`: the Tactic contract (``propose(n, history)`` / ``observe``) and ``make_tactic``; `registry`: tactics by
  name (``fleetnas.tactics`` entry points); `options`: typed tactic options; `history`: what a tactic sees.
- `linas` (predictor-guided), `baselines` (``random``, ``nsga2``), `acquisition` (batch picking for linas),
  `pymoo_bridge` (the one NSGA-II set-up).
- `engine`: `Search`, the ask/tell interface with the SQLite journal (`fleetnas.host.store.journal`) and resume.
- `benchmark`: tables with ground truth and Python problems, as used by `fleetnas bench` and
  ``benchmarks/search_efficiency.py``.
"""
