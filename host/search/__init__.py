"""The search engine.

- `params` (Choice, Integer, ActiveIf) and `space`: SearchSpace with optional conditions and cell, canonical keys,
  genes, encodings, variation operators; `cells`: cell DAGs (live ops).
- `pareto`: Objective (name + direction), non-dominated sorting, exact hypervolume, min-max normalisation.
- `tactic`: the Tactic contract (``propose(n, history)`` / ``observe``), History, registry (`make_tactic`).
- `linas` (predictor-guided), `baselines` (``random``, ``nsga2``), `acquisition` (batch picking for linas).
- `engine`: `Search`, the ask/tell interface with the SQLite journal (`fleetnas.host.store.journal`) and resume.
- `benchmark`: tables with ground truth and Python problems, as used by `fleetnas bench` and
  ``benchmarks/search_efficiency.py``.
"""
