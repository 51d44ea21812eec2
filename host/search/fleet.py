"""One search for a fleet of device classes: accuracy is validated once and serves every class.

Accuracy does not depend on the device, so one accuracy predictor learns from every validated sub-network; each class
keeps its own cost predictors, and candidates are chosen for the fleet as a whole. A class (`DeviceClass`) has one cost
(latency or energy) or two (latency and energy, measured together: three objectives with the accuracy). A round:

1. **Accuracy**: the model family with the best cross-validated Kendall tau on all validated configs (normal scores,
   as linas), refitted with its uncertainty.
2. **Each cost of each class**, with transfer (`fleetnas.host.search.fleet_models`): a ridge model on the encoding
   (level 0), and, when other costs have measurements, a ridge model that also takes the other costs' *predicted*
   values as inputs (level 1). The variant with the smaller leave-one-out error is kept, so a class with ten
   measurements mostly rescales what the other boards measured, and a class with hundreds relies on its own data.
3. **Candidates**: random configs, one-gene neighbours of every class's measured front and of the predicted fronts
   (at most ``max_neighbours`` configs of each front), plus every validated config not yet measured on some class (its
   accuracy is then exact); at most ``max_pool`` new configs, so a round on a large space stays within seconds.
4. **Batch**: for every class, Monte Carlo draws give each candidate's probability of being non-dominated on that
   class's measured front (accuracy draws are shared by all classes). Greedily, the candidate with the largest sum of
   probabilities over the classes that still have room this round is taken and assigned to every class where that
   probability is worth a measurement; a believer fantasy per assigned class spreads the batch. A validated candidate
   costs no validation; new validations are paced so that ``max_validations`` lasts the run. (``acquisition="ehvi"``
   uses the expected hypervolume improvement instead; on NB201 it found fewer front members and a larger gap.)
   A class with two costs is non-dominated on its 3-D front; by default (``dominance="projections"``) a draw counts as
   non-dominated when it is so in some (accuracy, cost) projection, cheaper and at least as good on NB201.
   A class's last ``exploit_share`` of its budget are chosen on predicted means only (no draws): by then the models are
   as good as they get, and a pure-exploitation pick is measured on fewer classes, so the run spends its validations
   on new configs. Which configs get validated decides the fronts: on NB201, measuring every validated config on every
   class would hardly lower any class's gap. (``class_share``, a share of each round picked by each class alone,
   ``others_weight`` and ``validations_first`` are kept as options; on NB201 none beat the default.)

Before that, ``n_init`` random configs are measured on every class (a reference set, as HELP does). A class added
later starts from ``n_reference`` validated configs spread over the other classes' cost range (on their measured
fronts, led by those fronts' ends: on NB201 this lowered a joining device's median gap after 30 measurements on each
of the three devices tuned on, up to 7x), then searches alone, reusing every validation; where the cap leaves room,
it spends new validations only after ``join_known_share`` of its budget (measured among validated configs: its early
cost model would waste them). Every random choice comes from ``default_rng([seed, round])``.

Drive it: ``ask(n)`` -> `FleetProposal` list (config, whether to validate it first, classes to measure it on; ``n``
is measurements per class in this round), then ``tell_accuracy(key, value)`` and ``tell_cost(key, cls, value)``
(``value``: a number, or a mapping cost name -> value for a class with two costs).
Options: `FleetOptions` (unknown or invalid ones raise `OptionError` naming the field).

``round_reports``: one dict per model-based round (not the initial design or a reference set)::

    {"round": int, "n_validated": int, "pool": int, "picked": int, "assigned": int,
     "accuracy_model": str, "fit_s": float, "total_s": float,
     "cost_models": {series: {"inputs": "own" | "others" | "own+others", "loo_rmse": float}},
     "quality": {
        "accuracy": {"model": str, "cv_tau": float | None, "recent_tau": float | None, "n_recent": int},
        "classes": {class: {"loo_tau": float | None, "loo_mape": float | None, "n": int,
                            "recent_tau": float | None, "recent_mape": float | None, "n_recent": int,
                            "costs": {cost: {the same keys}}   # a class with two costs; the figures above: its first
                            }}}}

A series is one cost of one class: named like the class when it has one cost, ``class/cost`` each when it has two.

``loo_*``: the class's cost model, every measured point predicted by the model fitted without it (``n`` points);
``recent_*``: the newest ``quality_window`` values predicted when they were asked and scored once told (the picks, so
near the fronts: a harder, narrower sample). ``cv_tau``: the accuracy model's k-fold Kendall tau at its last selection;
its ``recent_tau`` scores the newest validations (accuracy is predicted in normal scores: ranks only, no MAPE). ``None``
when fewer than 3 points; every class of the search is listed.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np

from fleetnas.host.predictors.base import kendall_tau, mape
from fleetnas.host.predictors.registry import PREDICTORS, make_predictor
from fleetnas.host.predictors.selection import select_and_fit
from fleetnas.host.search.encoding import features, onehot
from fleetnas.host.search.fleet_acquisition import DominanceState, HVIState
from fleetnas.host.search.fleet_models import CostModels, LooRidge, series_names
from fleetnas.host.search.linas import normal_scores
from fleetnas.host.search.options import OptionError, at_least, from_mapping
from fleetnas.host.search.operators import neighbours_genes, sample_genes
from fleetnas.host.search.pareto import Objective, non_dominated_mask, nondominated_ranks
from fleetnas.host.search.space import Config, SearchSpace

TRANSFERS = ("stack", "none")
ACQUISITIONS = ("pnd", "ehvi")
DOMINANCE = ("full", "projections")
REFERENCE_POOLS = ("fronts", "all")
_Ridge = LooRidge   # the name the tests and older callers use


@dataclass(frozen=True)
class DeviceClass:
    """A device class and the costs measured on its boards (one, or two such as latency and energy); a cost's name
    is what `FleetSearch.tell_cost` is given."""

    name: str
    costs: Tuple[Objective, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.costs) <= 2:
            raise ValueError(f"device class {self.name!r}: give one or two costs, not {len(self.costs)}")
        names = [c.name for c in self.costs]
        if len(set(names)) != len(names):
            raise ValueError(f"device class {self.name!r}: the costs {names} must differ")

    @classmethod
    def of(cls, item: Union["DeviceClass", Objective]) -> "DeviceClass":
        """An `Objective` is a class with that one cost, named like it."""
        return item if isinstance(item, DeviceClass) else cls(item.name, (item,))

    @property
    def series(self) -> List[str]:
        return series_names(self.name, [c.name for c in self.costs])


@dataclass(frozen=True)
class FleetProposal:
    """Measure ``config`` on ``classes``; when ``validate`` is true its accuracy must be evaluated first."""

    config: Config
    key: str
    validate: bool
    classes: Tuple[str, ...]


@dataclass(frozen=True)
class FleetOptions:
    """Options of a fleet search (``FleetSearch(..., **options)``; built with `from_mapping`, so JSON values work)."""

    n_init: int = 20                 # random configs validated and measured on every class first
    n_reference: int = 10            # validated configs a class added later measures first
    acc_families: Tuple[str, ...] = ("ridge", "svr", "trees", "mlp", "gp")
    rescore_every: int = 3           # rounds between accuracy model selections (the chosen family is refitted)
    transfer: str = "stack"          # "stack": other classes' predicted costs as inputs; "none": own data only
    n_random_pool: int = 1000
    neighbour_ranks: int = 2         # one-gene neighbours of measured configs in a class's first fronts
    pool_steps: int = 2              # rounds of neighbours of the predicted fronts
    n_draws: int = 48
    std_scale: float = 2.0           # multiplies the accuracy std in the acquisition
    acquisition: str = "pnd"         # "pnd": probability of being non-dominated; "ehvi": expected HV improvement
    min_assign_share: float = 0.1    # a picked config is measured on each class where its utility is >= this share
                                     # of that class's best
    class_share: float = 0.0         # share of each class's round picked by its own utility before the fleet-wide
                                     # choice
    others_weight: float = 1.0       # weight of the other classes' utility in the fleet-wide choice (see _round)
    validations_first: bool = False  # each round spends its share of new validations before measuring known configs
    exploit_share: float = 0.15      # the last share of a class's budget is picked on predicted means (no draws)
    reference_pool: str = "fronts"   # a class added later: its first configs among those on some other class's
                                     # measured front ("fronts") or among all validated configs ("all")
    reference_extremes: bool = True  # ... led by the other fronts' ends (each cost's cheapest, the most accurate)
    join_known_share: float = 0.3    # a class added later measures this share of its budget among validated configs
                                     # before it spends new validations (until then its cost model cannot tell which
                                     # new configs are worth one)
    exploit_share_two_costs: float = 0.5   # the same for a class with two costs: its 3-D front is larger, and on
                                           # NB201 a longer tail found more of it
    quality_window: int = 60         # newest predictions (made before the value was told) scored per class
    dominance: str = "projections"   # a class with two costs: its utility from the 3-D front ("full") or from the
                                     # 2-D (accuracy, cost) projections ("projections": cheaper, and on NB201 it
                                     # found fronts at least as good)
    max_pool: int = 8000             # candidates per round at most (a random subset beyond): bounds the host time
    max_neighbours: int = 128        # configs per front (measured or predicted) whose one-gene neighbours join the pool

    def __post_init__(self) -> None:
        at_least(self, 0, "n_init", "rescore_every", "n_random_pool", "neighbour_ranks", "pool_steps", "std_scale",
                 "min_assign_share", "class_share", "exploit_share", "exploit_share_two_costs",
                 "others_weight", "join_known_share")
        at_least(self, 1, "n_draws", "quality_window", "max_pool", "max_neighbours")
        at_least(self, 3, "n_reference")
        for name in ("class_share", "exploit_share", "exploit_share_two_costs", "join_known_share"):
            if getattr(self, name) > 1:
                raise OptionError(f"{name}={getattr(self, name)!r}: must be <= 1")
        if self.transfer not in TRANSFERS:
            raise OptionError(f"transfer={self.transfer!r}: must be one of {', '.join(TRANSFERS)}")
        if self.dominance not in DOMINANCE:
            raise OptionError(f"dominance={self.dominance!r}: must be one of {', '.join(DOMINANCE)}")
        if self.reference_pool not in REFERENCE_POOLS:
            raise OptionError(f"reference_pool={self.reference_pool!r}: must be one of {', '.join(REFERENCE_POOLS)}")
        if self.acquisition not in ACQUISITIONS:
            raise OptionError(f"acquisition={self.acquisition!r}: must be one of {', '.join(ACQUISITIONS)}")
        if not self.acc_families:
            raise OptionError(f"acc_families: give at least one; available: {', '.join(PREDICTORS.names())}")
        unknown = [f for f in self.acc_families if f not in PREDICTORS]
        if unknown:
            raise OptionError(f"acc_families: unknown predictor(s) {', '.join(unknown)}; "
                              f"available: {', '.join(PREDICTORS.names())}")


class FleetSearch:
    """See the module docstring. ``classes``: a `DeviceClass` each, or an `Objective` for a class with that one cost
    (its name names the class)."""

    def __init__(self, space: SearchSpace, accuracy: Objective,
                 classes: Sequence[Union[DeviceClass, Objective]], seed: int = 0,
                 budget: int = 300, max_validations: Optional[int] = None, **options: Any) -> None:
        self.options: FleetOptions = from_mapping(FleetOptions, options, "fleet search")
        self.space, self.accuracy, self.seed = space, accuracy, int(seed)
        self.max_validations = max_validations
        self.classes: List[DeviceClass] = []
        self._series: Dict[str, Tuple[str, int]] = {}     # cost series -> (class, index of the cost)
        self.budget: Dict[str, int] = {}
        self._genes: Dict[str, np.ndarray] = {}
        self._acc: Dict[str, float] = {}                 # validated, minimisation form
        self._cost: Dict[str, Dict[str, np.ndarray]] = {}  # class -> key -> its costs (minimisation form)
        self._order: Dict[str, List[str]] = {}           # class -> keys in measurement order
        self._pending_val: Set[str] = set()
        self._pending: Dict[str, Set[str]] = {}           # class -> keys asked, no cost yet
        self._seen_rows: Set[bytes] = set()
        self._failed: Dict[str, Set[str]] = {}            # class -> keys whose measurement failed
        self._invalid: Set[str] = set()                   # keys whose validation failed
        self._acc_model = None
        self._acc_family: Optional[str] = None
        self._acc_cv_tau: Optional[float] = None
        # Predictions made when a config was asked, paired with the value once told: held-out quality.
        self._predicted_acc: Dict[str, float] = {}
        self._predicted_cost: Dict[str, Dict[str, float]] = {}   # per cost series
        self._recent_acc: Deque[Tuple[float, float]] = deque(maxlen=self.options.quality_window)
        self._recent_cost: Dict[str, Deque[Tuple[float, float]]] = {}
        self.round = 0
        self.round_reports: List[Dict[str, Any]] = []
        self._joined: Set[str] = set()                   # classes added once the search had started
        for objective in classes:
            self.add_class(objective, budget)

    # --- bookkeeping ------------------------------------------------------------------------------------------------
    def add_class(self, device_class: Union[DeviceClass, Objective], budget: int) -> None:
        dc = DeviceClass.of(device_class)
        if dc.name in self.budget:
            raise ValueError(f"device class {dc.name!r} is already in the search")
        if len(dc.costs) > 1 and self.options.acquisition == "ehvi":
            raise OptionError(f"device class {dc.name!r} has {len(dc.costs)} costs: acquisition='ehvi' takes one "
                              "cost per class; use acquisition='pnd'")
        if self.round > 0:
            self._joined.add(dc.name)
        self.classes.append(dc)
        self.budget[dc.name] = int(budget)
        self._cost[dc.name], self._order[dc.name], self._pending[dc.name] = {}, [], set()
        for j, s in enumerate(dc.series):
            self._series[s] = (dc.name, j)
            self._predicted_cost[s] = {}
            self._recent_cost[s] = deque(maxlen=self.options.quality_window)

    def device_class(self, name: str) -> DeviceClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise ValueError(f"no device class {name!r} in the search; it has {', '.join(c.name for c in self.classes)}")

    @property
    def n_validations(self) -> int:
        """Distinct configs whose accuracy is validated or asked for (failed validations count: they were paid)."""
        return len(self._acc) + len(self._pending_val) + len(self._invalid)

    def measurements(self, cls: str) -> List[str]:
        """Keys measured on ``cls``, in the order the results arrived."""
        return list(self._order[cls])

    def _left(self, cls: str) -> int:
        return self.budget[cls] - len(self._cost[cls]) - len(self._pending[cls]) - len(self._failed.get(cls, ()))

    @property
    def finished(self) -> bool:
        return all(self._left(c.name) <= 0 for c in self.classes)

    def _validations_left(self) -> float:
        # a cap lowered below what is spent (a resume may set it) just stops new validations
        return math.inf if self.max_validations is None else max(0, self.max_validations - self.n_validations)

    def tell_accuracy(self, key: str, value: float) -> None:
        self._pending_val.discard(key)
        self._acc[key] = -float(value) if self.accuracy.maximize else float(value)
        if key in self._predicted_acc:
            self._recent_acc.append((self._predicted_acc.pop(key), self._acc[key]))

    def tell_cost(self, key: str, cls: str, value: Union[float, Mapping[str, float]]) -> None:
        """The measured cost(s) of ``key`` on ``cls``: a number for a class with one cost, else a mapping cost name ->
        value with every cost of the class."""
        if key not in self._acc:
            raise ValueError(f"{key}: a cost is told only after its accuracy (tell_accuracy first)")
        dc = self.device_class(cls)
        if isinstance(value, Mapping):
            missing = [c.name for c in dc.costs if c.name not in value]
            if missing:
                raise ValueError(f"{key} on {cls}: no value for cost(s) {', '.join(missing)}; give every cost of "
                                 f"the class ({', '.join(c.name for c in dc.costs)})")
            raw = [float(value[c.name]) for c in dc.costs]
        elif len(dc.costs) == 1:
            raw = [float(value)]
        else:
            raise ValueError(f"{key} on {cls}: the class has {len(dc.costs)} costs; give a mapping cost -> value")
        self._pending[cls].discard(key)
        if key not in self._cost[cls]:
            self._order[cls].append(key)
        self._cost[cls][key] = np.array([-v if c.maximize else v for c, v in zip(dc.costs, raw)])
        for j, s in enumerate(dc.series):
            if key in self._predicted_cost[s]:
                self._recent_cost[s].append((self._predicted_cost[s].pop(key), float(self._cost[cls][key][j])))

    def fail(self, key: str, cls: Optional[str] = None) -> None:
        """A measurement on ``cls`` failed (it counts against that class's budget and is never asked again), or, with
        no class, the validation failed: the config is dropped from every class it was asked for."""
        if cls is not None:
            self._pending[cls].discard(key)
            self._failed.setdefault(cls, set()).add(key)
            for s in self.device_class(cls).series:
                self._predicted_cost[s].pop(key, None)
            return
        self._pending_val.discard(key)
        self._predicted_acc.pop(key, None)
        self._invalid.add(key)
        for c in self._pending:
            self._pending[c].discard(key)
        for s in self._predicted_cost:
            self._predicted_cost[s].pop(key, None)

    def _register(self, config: Config, validate: bool, classes: Sequence[str]) -> FleetProposal:
        key = self.space.key(config)
        if key not in self._genes:
            genes = self.space.canonical_genes(self.space.to_genes(self.space.validate(config)))[0]
            self._genes[key] = genes
            self._seen_rows.add(genes.tobytes())
        if validate:
            self._pending_val.add(key)
        for c in classes:
            self._pending[c].add(key)
        return FleetProposal(self.space.config_from_key(key), key, validate, tuple(classes))

    # --- asking -----------------------------------------------------------------------------------------------------
    def ask(self, n: int) -> List[FleetProposal]:
        """Up to ``n`` measurements per class for this round (fewer when budgets or the space run out)."""
        from threadpoolctl import threadpool_limits

        rng = np.random.default_rng([self.seed, self.round])
        active = [c.name for c in self.classes if self._left(c.name) > 0]
        if not active:
            return []
        if self.n_validations < self.options.n_init and len(self.classes) == len(active) \
                and not any(self._cost.values()):
            return self._initial_design(rng, active)
        fresh = [c for c in active if not self._cost[c] and not self._pending[c]]
        if fresh:
            return self._reference_set(fresh)
        with threadpool_limits(1):  # small matrices; results independent of the host's core count
            return self._round(n, rng, active)

    def _initial_design(self, rng, active: List[str]) -> List[FleetProposal]:
        k = self.options.n_init - self.n_validations
        k = int(min(k, self._validations_left(), min(self._left(c) for c in active)))
        genes = self.space.canonical_genes(sample_genes(self.space, rng, 4 * k + 8))
        genes = genes[self.space.first_occurrences(genes)]
        out = []
        for g in genes:
            if len(out) >= k:
                break
            if g.tobytes() not in self._seen_rows:
                out.append(self._register(self.space.from_genes(g), True, active))
        self.round += 1
        return out

    def _reference_set(self, fresh: List[str]) -> List[FleetProposal]:
        """The new class's first measurements: validated configs spread over the other classes' cost range, taken
        (``reference_pool="fronts"``) among those on some other class's measured front, and (``reference_extremes``)
        led by the ends of those fronts: each other class's cheapest validated config in each of its costs, and the
        most accurate one. A front's ends anchor its hypervolume, and at the cheap end boards rank configs alike."""
        others = [c.name for c in self.classes if c.name not in fresh and self._cost[c.name]]
        keys = [k for k in self._acc if all(k in self._cost[o] for o in others)] or list(self._acc)
        if others and self.options.reference_pool == "fronts":
            on_front = np.zeros(len(keys), dtype=bool)
            acc = np.array([self._acc[k] for k in keys])
            for o in others:
                on_front |= non_dominated_mask(np.column_stack([acc, np.stack([self._cost[o][k] for k in keys])]))
            if on_front.sum() >= 3:
                keys = [k for k, f in zip(keys, on_front) if f]
        if others:
            z = np.column_stack([self._standardised_costs(o, keys) for o in others]).mean(axis=1)
            keys = [keys[i] for i in np.argsort(z, kind="stable")]
        k = min(max(3, self.options.n_reference), len(keys))  # a cost model needs 3 points
        picked = [keys[int(i)] for i in np.unique(np.linspace(0, len(keys) - 1, k).round().astype(int))]
        if self.options.reference_extremes and others:
            ends = []
            for o in others:
                measured = [key for key in self._cost[o] if key in self._acc]
                for j in range(len(self.device_class(o).costs)):
                    ends.append(min(measured, key=lambda key: float(self._cost[o][key][j])))
            ends.append(min(self._acc, key=self._acc.__getitem__))     # minimisation form: the most accurate
            ends = list(dict.fromkeys(ends))[:k]
            picked = ends + [key for key in picked if key not in ends][:k - len(ends)]
        out = []
        for key in picked:
            classes = [c for c in fresh if self._left(c) > 0]
            if classes:
                out.append(self._register(self.space.config_from_key(key), False, classes))
        self.round += 1
        return out

    def _standardised_costs(self, cls: str, keys: Sequence[str]) -> np.ndarray:
        """Each cost of the class standardised over ``keys``, averaged over its costs."""
        v = np.array([self._cost[cls][k] for k in keys])
        return ((v - v.mean(axis=0)) / (v.std(axis=0) + 1e-12)).mean(axis=1)

    # --- one round --------------------------------------------------------------------------------------------------
    def _round(self, n: int, rng, active: List[str]) -> List[FleetProposal]:
        t0 = time.perf_counter()
        val_keys = list(self._acc)
        Xv = features(self.space, np.stack([self._genes[k] for k in val_keys]))
        acc_ns = normal_scores(np.array([self._acc[k] for k in val_keys])[:, None])[:, 0]
        acc_model = self._fit_accuracy(Xv, acc_ns)
        cost_models = self._fit_costs()
        t1 = time.perf_counter()

        # Candidates: validated first (exact accuracy), then new configs.
        pool = self._pool(rng, cost_models, acc_model)
        n_val = len(val_keys)
        genes = np.vstack([np.stack([self._genes[k] for k in val_keys]), pool]) if len(pool) else \
            np.stack([self._genes[k] for k in val_keys])
        X = features(self.space, genes)
        acc_mean, acc_std = acc_model.predict(X[n_val:]) if len(pool) else (np.zeros(0), np.zeros(0))
        acc_mean = np.concatenate([acc_ns, acc_mean])
        acc_std = np.concatenate([np.zeros(n_val), acc_std * self.options.std_scale])
        cost_mean = self._predict_costs(cost_models, genes)
        P, S = genes.shape[0], self.options.n_draws
        acc_draws = acc_mean[None, :] + acc_std[None, :] * rng.standard_normal((S, P))
        key_of_val = {k: i for i, k in enumerate(val_keys)}

        quota = {c: min(n, self._left(c)) for c in active}
        val_quota = self._validation_quota(n, active)
        ehvi = self.options.acquisition == "ehvi"
        acc_min_form = self._acc_min_form(val_keys)
        acc_raw = self._ns_to_raw(acc_ns, acc_min_form) if ehvi else None
        states, rank = {}, {}
        projections = self.options.dominance == "projections"
        for c in active:
            predicted = [cost_mean[sname] for sname in self.device_class(c).series]
            means = [mean for mean, _ in predicted]
            # drawn for every class (and cost), so the exploitation tail leaves the stream unchanged
            noise = [rng.standard_normal((S, P)) for _ in predicted]
            share = self.options.exploit_share if len(means) == 1 else self.options.exploit_share_two_costs
            if self._left(c) <= share * self.budget[c]:  # its last measurements: means only
                s = np.stack([np.broadcast_to(acc_mean, (S, P))] + [np.broadcast_to(m, (S, P)) for m in means],
                             axis=2)
            else:
                s = np.stack([acc_draws] + [m[None, :] + sd * z for (m, sd), z in zip(predicted, noise)], axis=2)
            failed = self._failed.get(c, set())
            measured = np.array([k in self._cost[c] or k in self._pending[c] or k in failed for k in val_keys]
                                + [False] * len(pool))
            ck = [key_of_val[k] for k in self._cost[c] if k in key_of_val]
            cost = np.array([self._cost[c][val_keys[i]] for i in ck]).reshape(len(ck), len(means))
            if ehvi:  # one cost per class (checked when the class is added)
                # HV in the measured ranges (raw accuracy), as the benchmark's normalised HV
                mean, cost = means[0], cost[:, 0]
                span = cost if len(cost) > 1 else mean
                shift = np.array([acc_min_form.min(), span.min()])
                scale = np.maximum(np.array([np.ptp(acc_min_form), np.ptp(span)]), 1e-12)
                s = (np.stack([acc_raw(s[..., 0]), s[..., 1]], axis=2) - shift) / scale
                front = (np.column_stack([acc_min_form[ck], cost]) - shift) / scale if ck else np.zeros((0, 2))
                states[c] = HVIState(s, front[non_dominated_mask(front)], measured)
                means = (np.column_stack([acc_raw(acc_mean), mean]) - shift) / scale
            else:
                front = np.column_stack([acc_ns[ck], cost]) if ck else np.zeros((0, 1 + len(means)))
                states[c] = DominanceState(s, front[non_dominated_mask(front)] if len(front) else front, measured,
                                           projections)
                means = np.column_stack([acc_mean] + means)
            states[c].means = means
            rank[c] = np.where(measured, np.iinfo(np.int64).max // 2, nondominated_ranks(means)
                               if not ehvi else nondominated_ranks(np.column_stack([acc_mean, mean])))
        validated = np.zeros(P, dtype=bool)
        validated[:n_val] = True
        picks: Dict[int, List[str]] = {}
        min_share = self.options.min_assign_share
        taken = np.iinfo(np.int64).max // 2

        def useful(c: str, i: int, utility: np.ndarray, top: float) -> bool:
            return bool(rank[c][i] < P and utility[i] > 0 and utility[i] >= min_share * top)

        def take(best: int, assign: List[str]) -> None:
            nonlocal val_quota
            if not validated[best]:
                validated[best] = True
                val_quota -= 1
            for c in assign:
                quota[c] -= 1
                states[c].take(best)
                rank[c][best] = taken
            picks.setdefault(best, []).extend(assign)

        # Each class first takes its share of the round by its own utility (round robin, the starting class rotates),
        # so a class whose front differs from the others' is not starved; the config is measured on the other classes
        # where it is worth it there too.
        own = {c: math.ceil(self.options.class_share * quota[c]) for c in active}
        turn = [active[(i + self.round) % len(active)] for i in range(len(active))]
        while any(own[c] > 0 and quota[c] > 0 for c in turn):
            for c in turn:
                if own[c] <= 0 or quota[c] <= 0:
                    continue
                u = states[c].utility()
                score = np.where(rank[c] < P, u + 1e-3 * max(float(u.max()), 1e-12) / (1.0 + rank[c]), -np.inf)
                if val_quota <= 0:
                    score = np.where(validated, score, -np.inf)
                best = int(np.argmax(score))
                if not np.isfinite(score[best]):
                    own[c] = 0
                    continue
                others = [o for o in active if o != c and quota[o] > 0]
                assign = [c] + [o for o in others if useful(o, best, states[o].utility(),
                                                            max(float(states[o].utility().max()), 1e-12))]
                own[c] -= 1
                take(best, assign)

        while any(quota[c] > 0 for c in active):
            live = [c for c in active if quota[c] > 0]
            utility = {c: states[c].utility() for c in live}
            top = {c: max(float(utility[c].max()), 1e-12) for c in live}
            # Utility summed over classes with room (each relative to its best; the classes other than the one that
            # values the candidate most weigh ``others_weight``), a small predicted-rank bonus to break ties at zero
            # once the fronts are covered.
            relative = np.stack([utility[c] / top[c] for c in live])
            score = (1.0 - self.options.others_weight) * relative.max(axis=0) \
                + self.options.others_weight * relative.sum(axis=0) \
                + sum(1e-3 / (1.0 + rank[c]) * (rank[c] < P) for c in live)
            if val_quota <= 0:
                score = np.where(validated, score, -np.inf)
            elif self.options.validations_first:
                # Which configs get validated decides the fronts (measuring every validated config on every class
                # would hardly lower the gap): spend the round's validations first, then measure what is known.
                new = np.where(validated, -np.inf, score)
                if new.max() > 0:
                    score = new
            best = int(np.argmax(score))
            if not np.isfinite(score[best]) or score[best] <= 0:
                break
            assign = [c for c in live if useful(c, best, utility[c], top[c])]
            if not assign:  # nothing worth measuring by utility: the class with the best predicted rank
                assign = [min(live, key=lambda c: rank[c][best])]
                if rank[assign[0]][best] >= P:
                    break
            take(best, assign)
        out = [self._register(self.space.from_genes(genes[i]), i >= n_val, [c for c in active if c in set(cls)])
               for i, cls in picks.items()]
        for (i, cls), proposal in zip(picks.items(), out):
            if proposal.validate:
                self._predicted_acc[proposal.key] = float(acc_mean[i])
            for c in cls:
                for sname in self.device_class(c).series:
                    self._predicted_cost[sname][proposal.key] = float(cost_mean[sname][0][i])
        t2 = time.perf_counter()
        self.round_reports.append({"round": self.round, "n_validated": n_val, "pool": int(len(pool)),
                                   "assigned": int(sum(len(v) for v in picks.values())), "picked": len(picks),
                                   "accuracy_model": self._acc_family,
                                   "cost_models": cost_models.report(),
                                   "quality": self._quality(cost_models),
                                   "fit_s": round(t1 - t0, 3), "total_s": round(t2 - t0, 3)})
        self.round += 1
        return out

    def _quality(self, cost_models: CostModels) -> Dict[str, Any]:
        """The predictors' quality on held-out points, in the shape the module docstring gives."""
        def rounded(x: Optional[float]) -> Optional[float]:
            return None if x is None else round(float(x), 4)

        def recent(pairs) -> Tuple[Optional[float], Optional[float], int]:
            if len(pairs) < 3:
                return None, None, len(pairs)
            pred, true = np.array(pairs).T
            return kendall_tau(true, pred), mape(true, pred), len(pairs)

        acc_tau, _, acc_n = recent(self._recent_acc)  # accuracy is predicted in normal scores: rank quality only
        def series_quality(sname: str) -> Dict[str, Any]:
            tau, err, n = recent(self._recent_cost[sname])
            entry = {"loo_tau": None, "loo_mape": None, "n": 0,
                     "recent_tau": rounded(tau), "recent_mape": rounded(err), "n_recent": n}
            if sname in cost_models:
                y, pred = cost_models.models[sname]["y"], cost_models.loo_predictions(sname)
                entry.update(loo_tau=rounded(kendall_tau(y, pred)), loo_mape=rounded(mape(y, pred)), n=len(y))
            return entry

        classes = {}
        for c in self.classes:
            # a class with two costs: its first cost's figures, and every cost's under "costs"
            per_cost = {cost.name: series_quality(sname) for cost, sname in zip(c.costs, c.series)}
            classes[c.name] = dict(per_cost[c.costs[0].name])
            if len(c.costs) > 1:
                classes[c.name]["costs"] = per_cost
        return {"accuracy": {"model": self._acc_family, "cv_tau": rounded(self._acc_cv_tau),
                             "recent_tau": rounded(acc_tau), "n_recent": acc_n},
                "classes": classes}

    def _acc_min_form(self, keys: Sequence[str]) -> np.ndarray:
        return np.array([self._acc[k] for k in keys])

    @staticmethod
    def _ns_to_raw(ns: np.ndarray, raw: np.ndarray):
        """Map normal scores back to accuracy (minimisation form) through the validated pairs; linear beyond them,
        with the slope of the outer 5 %, so a candidate predicted better than every validated one keeps its edge."""
        order = np.argsort(ns, kind="stable")
        xs, ys = ns[order], raw[order]
        m = max(2, len(xs) // 20)
        lo = (ys[m - 1] - ys[0]) / max(xs[m - 1] - xs[0], 1e-9)
        hi = (ys[-1] - ys[-m]) / max(xs[-1] - xs[-m], 1e-9)

        def to_raw(z: np.ndarray) -> np.ndarray:
            out = np.interp(z, xs, ys)
            out = np.where(z < xs[0], ys[0] + (z - xs[0]) * lo, out)
            return np.where(z > xs[-1], ys[-1] + (z - xs[-1]) * hi, out)

        return to_raw

    def _validation_quota(self, n: int, active: List[str]) -> float:
        left = self._validations_left()
        if math.isinf(left):
            return math.inf
        if all(c in self._joined and len(self._cost[c]) < self.options.join_known_share * self.budget[c]
               for c in active):
            return 0     # only classes that joined, each still searching what is validated
        # Spread what is left over the rounds the longest-running class still needs.
        rounds = max(1.0, max(self._left(c) for c in active) / max(1, n))
        return max(0, math.ceil(left / rounds))

    def _fit_accuracy(self, X: np.ndarray, y: np.ndarray):
        seed = self.seed * 1000 + self.round
        families = list(self.options.acc_families)
        if self._acc_family is None or self.round % max(1, self.options.rescore_every) == 0 \
                or len(families) == 1:
            selection = select_and_fit(X, y, families, n_folds=3, seed=seed)
            self._acc_family = selection.chosen
            self._acc_cv_tau = next(sc.kendall_tau for sc in selection.scores if sc.model == selection.chosen)
            return selection.predictor
        return make_predictor(self._acc_family, seed=seed, with_uncertainty=True).fit(X, y)

    # --- cost models with transfer (see `fleetnas.host.search.fleet_models`) ---------------------------------------
    def _cost_X(self, genes: np.ndarray) -> np.ndarray:
        return onehot(self.space, genes)  # costs are close to additive in the ops actually run

    def _fit_costs(self) -> CostModels:
        data = {}
        for sname, (c, j) in self._series.items():
            keys = self._order[c]
            data[sname] = (keys, np.array([self._cost[c][k][j] for k in keys]))
        return CostModels(data, self._cost_X, self._genes, self.options.transfer)

    @staticmethod
    def _predict_costs(models: CostModels, genes: np.ndarray) -> Dict[str, Tuple[np.ndarray, float]]:
        return models.predict(genes)

    # --- candidate pool ---------------------------------------------------------------------------------------------
    def _pool(self, rng, cost_models: CostModels, acc_model) -> np.ndarray:
        """Random configs, and one-gene neighbours of the measured and predicted fronts, at most ``max_pool``."""
        parts = [sample_genes(self.space, rng, self.options.n_random_pool)]
        ranks_kept = self.options.neighbour_ranks
        acc_of = self._acc
        for c in self.classes:
            keys = self._order[c.name]
            if len(keys) < 2:
                continue
            F = np.array([np.concatenate([[acc_of[k]], self._cost[c.name][k]]) for k in keys])
            ranks = nondominated_ranks(F)
            best = self._bounded(np.stack([self._genes[k] for k in keys]), ranks, ranks < ranks_kept, rng)
            parts.append(neighbours_genes(self.space, best))
        pool = self._capped(self._dedup(np.vstack(parts)), rng)
        for _ in range(self.options.pool_steps):
            if not len(pool):
                break
            X = features(self.space, pool)
            acc = acc_model.predict_mean(X)
            costs = self._predict_costs(cost_models, pool)
            best = []
            for c in self.classes:
                if not all(sname in costs for sname in c.series):
                    continue
                ranks = nondominated_ranks(np.column_stack([acc] + [costs[sname][0] for sname in c.series]))
                best.append(self._bounded(np.arange(len(pool)), ranks, ranks == 0, rng))
            best_mask = np.zeros(len(pool), dtype=bool)
            for b in best:
                best_mask[b] = True
            pool = self._capped(self._dedup(np.vstack([pool, neighbours_genes(self.space, pool[best_mask])])), rng)
        return pool

    def _capped(self, pool: np.ndarray, rng) -> np.ndarray:
        """At most ``max_pool`` candidates (a random subset, in pool order): on a large space the neighbours of five
        fronts run to tens of thousands, and every candidate is predicted, so this bounds the round's host time."""
        if len(pool) <= self.options.max_pool:
            return pool
        return pool[np.sort(rng.choice(len(pool), self.options.max_pool, replace=False))]

    def _bounded(self, items: np.ndarray, ranks: np.ndarray, keep: np.ndarray, rng) -> np.ndarray:
        """``items[keep]``, at most ``max_neighbours`` of them: the best ranks first, a random choice among ties."""
        idx = np.flatnonzero(keep)
        if len(idx) > self.options.max_neighbours:
            order = np.lexsort((rng.random(len(idx)), ranks[idx]))
            idx = np.sort(idx[order[:self.options.max_neighbours]])
        return items[idx]

    def _dedup(self, genes: np.ndarray) -> np.ndarray:
        g = self.space.canonical_genes(genes)
        g = g[self.space.first_occurrences(g)]
        unseen = np.fromiter((row.tobytes() not in self._seen_rows for row in g), dtype=bool, count=g.shape[0])
        return g[unseen]
