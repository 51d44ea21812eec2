"""The search engine (issue 4).

- `space`: SearchSpace of Choice/Integer parameters with optional ActiveIf conditions, canonical keys, genes,
  encodings, variation operators.
- `pareto`: Objective (name + direction), non-dominated sorting, exact hypervolume, min-max normalisation.
- `tactic`: the Tactic contract (``propose(n, history)`` / ``observe``), History, registry (`make_tactic`).
- `linas` (predictor-guided), `baselines` (``random``, ``nsga2``), `acquisition` (batch picking for linas).
- `engine`: `Search`, the ask/tell interface with the SQLite journal (`fleetnas.host.store.journal`) and resume.
- `benchmark`: tables with ground truth and Python problems, as used by `fleetnas bench` and
  ``benchmarks/search_efficiency.py``.
"""
