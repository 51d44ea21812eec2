"""``linas``: predictor-guided evolutionary search (LINAS), done so that no measurement is wasted.

A round (run whenever ``propose`` is called and results arrived since the last fit, or the queue is empty):

1. **Predictors**: for every objective, each model family (ridge, svr, trees, mlp, gp) is scored on held-out data and
   the best Kendall tau is refitted with its uncertainty. Held-out data is *forward-chaining* cross-validation: the
   configs measured since the last round were predicted by last round's models before they were measured, which is
   exactly the region the search is exploring; the last ``heldout_window`` of those are pooled. The first round
   (nothing held out yet) uses k-fold cross-validation. The held-out z-scores also calibrate the chosen model's std.
2. **Inner search**: pymoo NSGA-II over the *predicted* objectives (``inner_pop`` x ``inner_generations``), started
   from the best measured configs; every individual it visits joins the candidate pool, with some random configs.
3. **Batch**: candidates never seen are ranked by the probability of being non-dominated given the measured front,
   with believer fantasies for spread (`fleetnas.host.search.acquisition`); the ranked list is the queue ``propose``
   serves from.

Before that, ``n_init`` random configs form the initial design. Every random choice comes from
``default_rng([seed, round])``, so the proposals are a function of the seed and the history of calls (resume works).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from scipy.stats import norm, rankdata
from threadpoolctl import threadpool_limits

from fleetnas.host.predictors.base import Uncertainty, kendall_tau, mape
from fleetnas.host.predictors.registry import DEFAULT_FAMILIES, PREDICTORS, make_predictor, predictor_class
from fleetnas.host.predictors.selection import select_and_fit
from fleetnas.host.search import encoding, operators, pymoo_bridge
from fleetnas.host.search.acquisition import pick_batch
from fleetnas.host.search.history import History
from fleetnas.host.search.options import OptionError, at_least
from fleetnas.host.search.pareto import nondominated_ranks
from fleetnas.host.search.space import Config
from fleetnas.host.search.tactic import Tactic


@dataclass(frozen=True)
class LinasOptions:
    n_init: int = 20                 # random initial design
    families: Tuple[str, ...] = DEFAULT_FAMILIES  # predictor families scored each round (fleetnas.predictors names)
    inner_pop: int = 50
    inner_generations: int = 100
    n_random_pool: int = 500         # random configs added to the pool (exploration)
    queue_size: int = 40             # candidates ranked per round
    heldout_window: int = 60         # held-out points pooled to score predictor families
    refit_after: int = 1             # refit once this many new results arrived (async fleets may raise it)
    rescore_every: int = 2           # families not chosen are refitted every this many rounds (see _choose)
    neighbour_ranks: int = 2         # one-gene neighbours of measured configs in the first fronts join the pool
    std_scale: float = 2.0           # multiplies the calibrated std in the acquisition (0: pure exploitation)

    def __post_init__(self) -> None:
        at_least(self, 0, "n_init", "n_random_pool", "neighbour_ranks", "inner_generations", "refit_after",
                 "rescore_every", "std_scale")
        at_least(self, 1, "queue_size", "heldout_window")
        at_least(self, 2, "inner_pop")
        if not self.families:
            raise OptionError(f"families: give at least one; available: {', '.join(PREDICTORS.names())}")
        unknown = [f for f in self.families if f not in PREDICTORS]
        if unknown:
            raise OptionError(f"families: unknown predictor(s) {', '.join(unknown)}; "
                              f"available: {', '.join(PREDICTORS.names())}")


def normal_scores(F: np.ndarray) -> np.ndarray:
    """Per column, ranks -> standard normal quantiles. Monotone, so dominance is unchanged, but outliers (a
    disconnected cell at 10 % accuracy) no longer dominate the fit and the crowded region near the front is spread."""
    F = np.asarray(F, dtype=float)
    if F.shape[0] == 0:
        return F
    ranks = np.column_stack([rankdata(F[:, j]) for j in range(F.shape[1])])
    return norm.ppf((ranks - 0.5) / F.shape[0])


class LinasTactic(Tactic):
    name = "linas"
    Options = LinasOptions
    options: LinasOptions

    def __init__(self, space, objectives, seed: int = 0, options: Optional[LinasOptions] = None) -> None:
        super().__init__(space, objectives, seed, options)
        self.round = 0
        self._queue: List[Config] = []
        self._n_at_fit = 0
        self._fitted_keys: set = set()
        self._models: List[Dict[str, Any]] = []       # per objective: family -> mean-only model of the last round
        self._chosen: List[Any] = []                  # per objective: chosen predictor (with std)
        self._heldout: List[Dict[str, List[float]]] = []  # per objective: "y", family names, "z" (calibration)
        self._tuned: Dict[Tuple[int, str], Tuple[Dict[str, Any], int]] = {}  # tuned hyper-parameters, fit size

    # --- proposing ------------------------------------------------------------------------------------------------
    def propose(self, n: int, history: History) -> List[Config]:
        n_init = self.options.n_init
        out: List[Config] = []
        proposed = history.n_evaluated + len(history.pending) + len(history.failed)
        if proposed < n_init:
            out = self.random_new(min(n, n_init - proposed), history)
            if len(out) == n:
                return out
        if history.n_evaluated < max(3, min(n_init, 10)):
            return out  # not enough results to fit anything yet: wait for them
        new_results = history.n_evaluated - self._n_at_fit
        fresh = [c for c in self._queue if not history.seen(self.space.key(c))]
        if not fresh or new_results >= self.options.refit_after:
            self._queue = self._run_round(history, max(n, self.options.queue_size))
        taken = {self.space.key(c) for c in out}
        while self._queue and len(out) < n:
            config = self._queue.pop(0)
            key = self.space.key(config)
            if not history.seen(key) and key not in taken:
                taken.add(key)
                out.append(config)
        if len(out) < n:  # the pool ran dry (tiny space or everything seen): fill at random
            out += self.random_new(n - len(out), history, taken)
        return out

    # --- one round ------------------------------------------------------------------------------------------------
    def _run_round(self, history: History, queue_size: int) -> List[Config]:
        # One BLAS thread: the matrices of a round are small (an MLP fit took 6x longer on two OpenBLAS threads than
        # on one), and results then do not depend on the host's core count (a resumed run replays the same rounds).
        with threadpool_limits(1):
            return self._round(history, queue_size)

    def _round(self, history: History, queue_size: int) -> List[Config]:
        t0, cpu0 = time.perf_counter(), time.process_time()
        rng = np.random.default_rng([self.seed, self.round])
        genes, F = history.genes(), normal_scores(history.F())
        report: Dict[str, Any] = {"round": self.round, "n_train": int(genes.shape[0]), "objectives": []}
        chosen = self._fit_round(history, genes, F, report)
        t1 = time.perf_counter()
        pool = self._inner_search(history, genes, F, rng)
        t2 = time.perf_counter()
        pool = pool[~history.seen_mask(pool)] if len(pool) else pool
        queue: List[Config] = []
        if len(pool):
            Xp = encoding.features(self.space, pool)
            mean = np.empty((len(pool), len(self.objectives)))
            std = np.empty_like(mean)
            for j, (predictor, obj) in enumerate(zip(chosen, report["objectives"])):
                mean[:, j], s = predictor.predict(Xp)
                std[:, j] = s * obj["std_calibration"] * self.options.std_scale
            picked = pick_batch(mean, std, F, min(queue_size, len(pool)), rng)
            queue = [self.space.from_genes(pool[i]) for i in picked]
        t3 = time.perf_counter()
        report.update(fit_s=round(t1 - t0, 3), inner_s=round(t2 - t1, 3), select_s=round(t3 - t2, 3),
                      total_s=round(t3 - t0, 3), cpu_s=round(time.process_time() - cpu0, 3), pool=int(len(pool)))
        self.round_reports.append(report)
        self.round += 1
        return queue

    def _fit_round(self, history: History, genes: np.ndarray, F: np.ndarray, report: Dict[str, Any]) -> List[Any]:
        """Score last round's models on what arrived since, choose and fit this round's; returns the chosen ones."""
        X = encoding.features(self.space, genes)
        self._score_heldout(history, X)
        models, chosen = [], []
        for j, objective in enumerate(self.objectives):
            choice, scores, calib = self._choose(j, X, F[:, j])
            models.append(choice["all"])
            chosen.append(choice["chosen"])
            report["objectives"].append({"name": objective.name, "chosen": choice["name"],
                                         "std_calibration": round(calib, 3), "scores": scores})
        self._models, self._chosen = models, chosen
        self._n_at_fit, self._fitted_keys = history.n_evaluated, set(history.keys)
        return chosen

    def _score_heldout(self, history: History, X: np.ndarray) -> None:
        """Predict the configs measured since the last fit with last round's models, before refitting."""
        if not self._models:
            self._heldout = [{"y": []} for _ in self.objectives]
            return
        new = [i for i, k in enumerate(history.keys) if k not in self._fitted_keys]
        if not new:
            return
        raw = history.F()
        F = normal_scores(raw)
        for j, store in enumerate(self._heldout):
            store["y"].extend(F[new, j].tolist())
            store.setdefault("raw:y", []).extend(raw[new, j].tolist())
            order = np.argsort(F[:, j], kind="stable")
            for name, model in self._models[j].items():
                pred = model.predict_mean(X[new])
                store.setdefault(name, []).extend(pred.tolist())
                # MAPE is reported on the objective's own scale: map normal scores back through the measured values.
                store.setdefault(f"raw:{name}", []).extend(np.interp(pred, F[order, j], raw[order, j]).tolist())
            mean, std = self._chosen[j].predict(X[new])
            z = (F[new, j] - mean) / np.maximum(std, 1e-12)
            store.setdefault("z", []).extend(z.tolist())
            window = self.options.heldout_window
            for key in list(store):
                store[key] = store[key][-window:]

    def _choose(self, j: int, X: np.ndarray, y: np.ndarray):
        families = list(self.options.families)
        store = self._heldout[j]
        seed = self.seed * 1000 + self.round
        scores: Dict[str, Dict[str, float]] = {}
        if len(store["y"]) >= 10 and all(f in store for f in families):
            y_held = np.array(store["y"])
            raw_held = np.array(store["raw:y"])
            for f in families:
                pred = np.array(store[f])
                scores[f] = {"kendall_tau": round(kendall_tau(y_held, pred), 4),
                             "mape": round(mape(raw_held, np.array(store[f"raw:{f}"])), 4)}
            name = max(families, key=lambda f: scores[f]["kendall_tau"])
            z = np.array(store.get("z", []))
            calib = float(np.clip(np.sqrt(np.mean(z ** 2)), 0.5, 5.0)) if z.size >= 10 else 1.0
            # The chosen family is refitted every round; the others only every ``rescore_every`` rounds. A model
            # kept from an earlier round still predicts configs it was not fitted on, so the held-out score stays
            # honest (slightly pessimistic for the older model), and the round saves most of its fitting time.
            previous = self._models[j] if self._models else {}
            every = max(1, self.options.rescore_every)
            all_models = {f: previous[f] if f != name and f in previous and self.round % every else
                          self._fit_family(j, f, X, y, seed) for f in families}
            chosen = all_models[name]
            if predictor_class(name).uncertainty == Uncertainty.BOOTSTRAP:
                # Mean-only fits have no std; the bootstrap replicas are fitted for the chosen family only.
                chosen = make_predictor(name, seed=seed, with_uncertainty=True).fit(X, y)
        else:
            selection = select_and_fit(X, y, families, n_folds=3, seed=seed)
            for s in selection.scores:  # k-fold on normal scores: this round's MAPE is on that scale
                scores[s.model] = {"kendall_tau": round(s.kendall_tau, 4), "mape": round(s.mape, 4),
                                   "mape_scale": "normal_scores"}
            name, calib, chosen = selection.chosen, 1.0, selection.predictor
            all_models = {f: self._fit_family(j, f, X, y, seed) for f in families}
        return {"all": all_models, "chosen": chosen, "name": name}, scores, calib

    def _fit_family(self, j: int, family: str, X: np.ndarray, y: np.ndarray, seed: int):
        if not predictor_class(family).tunes_hyperparameters:
            return make_predictor(family, seed=seed, with_uncertainty=False).fit(X, y)
        # Tuned hyper-parameters (a GP's kernel) are searched again when the data grew by half since the last time,
        # else reused.
        tuned, n_opt = self._tuned.get((j, family), (None, 0))
        if tuned is not None and X.shape[0] < 1.5 * n_opt:
            return make_predictor(family, seed=seed, **tuned).fit(X, y)
        model = make_predictor(family, seed=seed).fit(X, y)
        self._tuned[(j, family)] = (model.tuned_options(), X.shape[0])
        return model

    # --- inner search over predicted objectives -------------------------------------------------------------------
    def _inner_search(self, history: History, genes: np.ndarray, F: np.ndarray, rng) -> np.ndarray:
        space, chosen, visited = self.space, self._chosen, []

        def predicted(x: np.ndarray) -> np.ndarray:
            g = operators.clip_genes(space, x)
            visited.append(g)
            Xf = encoding.features(space, g)
            return np.column_stack([p.predict_mean(Xf) for p in chosen])

        pop_size = self.options.inner_pop
        # Start from the measured configs in front order (the search refines what is known to be good).
        start = genes[np.argsort(nondominated_ranks(F), kind="stable")][:pop_size]
        if start.shape[0] < pop_size:
            start = np.vstack([start, operators.sample_genes(space, rng, pop_size - start.shape[0])])
        problem = pymoo_bridge.gene_problem(space, len(self.objectives), predicted)
        # pymoo's elimination re-mates until offspring are unique: seconds per run in a small space. Off here; the
        # pool is deduplicated below.
        algorithm = pymoo_bridge.nsga2(pop_size, sampling=start, eliminate_duplicates=False)
        pymoo_bridge.run_generations(problem, algorithm, self.options.inner_generations,
                                     seed=int(rng.integers(2**31 - 1)))
        random_pool = operators.sample_genes(space, rng, self.options.n_random_pool)
        # Neighbours (one gene changed) of the best measured configs: fronts are locally connected.
        best = genes[nondominated_ranks(F) < self.options.neighbour_ranks]
        pool = space.canonical_genes(np.vstack(visited + [operators.neighbours_genes(space, best), random_pool]))
        return pool[space.first_occurrences(pool)]
