"""How much of the NAS-Bench-201 front can *any* predictor-guided search find? An oracle bound for the search targets.

NAS-Bench-201 cells with dead edges compute the same function as other cells (an op whose input is zero, or whose
output never reaches the cell output, changes nothing), so the 15,625 cells fall into ~4,900 functional classes.
Members of a class differ in accuracy only by training noise (sd ~0.15 points), and in latency by the dead ops
HW-NAS-Bench still runs plus measurement noise. Many true front members are the lucky members of a few large
classes (the identity cell, "conv1x1 only", ...): no model of the architecture can tell them from their twins.

This script runs a search with an *oracle* predictor: every cell's accuracy is predicted as its class's true mean
(computed from the whole table, which no real search can know) with the within-class sd. Each batch takes the
candidates with the highest probability of being on the front of the whole table (Monte Carlo over the noise), which
maximises the expected number of front members found. Two latency models:

- *exact*: the oracle knows every cell's measured latency, noise included (a loose bound);
- *fitted*: latency as the best architecture model predicts it, optimistically (trees fitted on the whole table,
  in-sample), times residuals resampled from cells with similar predictions. This is the realistic bound: even
  that fit barely orders the twins in a front member's latency band (Kendall tau 0.1 on raspi4, 0.4 on pixel3).

A second batch rule (``--aim hv``) takes the candidates with the highest expected hypervolume improvement instead,
greedily with per-draw fantasies: it bounds the HV gap as the first bounds recall. ``--mean-error`` degrades the
class means by a fixed per-class error (corrected as the class's members are measured), to see what a predictor of
a given quality can reach. The learned predictors' ranking quality among good cells (Kendall tau vs accuracy) is
printed next to the oracle's.

    python benchmarks/nb201_ceiling.py                              # raspi4 and pixel3, budget 500 (~2 min)
    python benchmarks/nb201_ceiling.py --mean-error 0,0.4,0.8 --seed 1 --aim recall
"""
from __future__ import annotations

import argparse
import csv
import gzip
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from fleetnas.host.predictors.base import kendall_tau
from fleetnas.host.predictors.registry import make_predictor
from fleetnas.host.search.pareto import hypervolume, non_dominated_mask

TABLE = Path(__file__).resolve().parent / "data" / "nb201_devices.csv.gz"   # shipped; see data/README.md
EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]  # e0..e5: (from node, to node); node 3 is the output
DEVICES = {"raspi4": "hwnb_raspi4_lat_ms", "pixel3": "hwnb_pixel3_lat_ms", "xeon": "help_xeon_gold6226_ms"}


def cell_function(ops: List[str]) -> str:
    """A canonical expression of what the cell computes: sums are sorted, skips inline their input, zero inputs and
    'none' edges vanish. Equal strings = the same function of the input."""
    nodes: Dict[int, Tuple] = {0: ("x",)}
    for j in (1, 2, 3):
        terms: List = []
        for op, (i, to) in zip(ops, EDGES):
            if to != j or op == "none" or not nodes[i]:
                continue
            terms.extend(nodes[i]) if op == "skip_connect" else terms.append((op, nodes[i]))
        nodes[j] = tuple(sorted(terms, key=repr))
    return repr(nodes[3])


def oracle_search(acc: np.ndarray, lat: np.ndarray, classes: np.ndarray, budget: int, batch: int, seed: int,
                  n_draws: int = 64, class_error: Optional[np.ndarray] = None,
                  mean_error: float = 0.0, latency_model: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                  aim: str = "recall") -> Dict[int, Tuple[float, float]]:
    """(recall, HV gap) at each standard budget of the oracle search (see the module docstring); the HV gap follows
    `fleetnas bench`'s convention (min-max normalised over the table, reference point 1.1).

    ``class_error`` (accuracy points per class, drawn with sd ``mean_error``) degrades the oracle into a model of a
    good predictor: every class's mean is known only up to that fixed error, which measuring the class's members
    corrects (a Gaussian posterior per class, as a model sharing information between twins would).

    ``latency_model`` (predicted latency, log residuals), from `fitted_latency`, replaces the exact latency of
    unmeasured cells by that prediction times a residual drawn from those of cells with similar predictions (ten
    bins): twins' latencies differ by what no model of the architecture predicts, so the front is a lottery on
    latency too.

    ``aim="hv"`` picks each batch by expected hypervolume improvement instead (`_hv_batch`): a bound on the gap."""

    F = np.column_stack([-acc, lat])
    Z = (F - F.min(axis=0)) / (F.max(axis=0) - F.min(axis=0))
    true = non_dominated_mask(F)
    hv_true = hypervolume(Z[true], [1.1, 1.1])
    counts = np.bincount(classes)
    class_mean = np.bincount(classes, acc) / counts
    resid = acc - class_mean[classes]
    shared = counts[classes] > 1
    # Pooled within-class sd (one degree of freedom per class spent on its mean).
    sd = float(np.sqrt(np.sum(resid[shared] ** 2) / max(1, shared.sum() - np.sum(counts > 1))))
    order = np.argsort(lat, kind="stable")
    rng = np.random.default_rng(seed)
    prior = class_mean + (class_error if mean_error > 0 else 0.0)
    mean, spread = prior[classes], np.full(acc.size, np.hypot(sd, mean_error))
    if latency_model is not None:  # residual pools per decile of the prediction, for fast resampling
        rank = np.argsort(np.argsort(latency_model[0], kind="stable"), kind="stable")
        decile = rank * 10 // acc.size
        resid_sorted = latency_model[1][np.argsort(decile, kind="stable")]
        edges = np.concatenate([[0], np.cumsum(np.bincount(decile, minlength=10))])
        start, size = edges[decile], (edges[1:] - edges[:-1])[decile]
    measured = np.zeros(acc.size, dtype=bool)
    out: Dict[int, Tuple[float, float]] = {}
    marks = [b for b in (50, 100, 200, 300, 500, 1000) if b <= budget]
    n = 0
    while n < budget:
        hits = np.zeros(acc.size)
        draws = []
        for _ in range(n_draws):
            if latency_model is not None:
                guess = latency_model[0] * np.exp(resid_sorted[start + (rng.random(acc.size) * size).astype(int)])
                order = np.argsort(np.where(measured, lat, guess), kind="stable")
            a = np.where(measured, acc, mean + spread * rng.standard_normal(acc.size))[order]
            if aim == "hv":
                draws.append(np.column_stack([-a, np.where(measured, lat, guess if latency_model is not None
                                                           else lat)[order]])[np.argsort(order)])
            best_before = np.maximum.accumulate(np.concatenate([[-np.inf], a[:-1]]))
            hits[order[a > best_before]] += 1  # on the 2-D front of this draw (latency ascending)
        hits[measured] = -1
        if aim == "hv":
            lo, span = F.min(axis=0), F.max(axis=0) - F.min(axis=0)
            picks = _hv_batch([(d - lo) / span for d in draws], Z[measured], ~measured, min(batch, budget - n))
        else:
            picks = np.argsort(-hits, kind="stable")[:min(batch, budget - n)]
        for i in picks:
            measured[i] = True
            n += 1
            if mean_error > 0:  # the class's posterior (prior: the erroneous mean; observations: its members)
                c = classes[i]
                members = measured & (classes == c)
                precision = 1.0 / mean_error ** 2 + members.sum() / sd ** 2
                post = (prior[c] / mean_error ** 2 + acc[members].sum() / sd ** 2) / precision
                mean[classes == c], spread[classes == c] = post, np.sqrt(1.0 / precision + sd ** 2)
            if n in marks:
                out[n] = (float((measured & true).sum() / true.sum()),
                          1.0 - hypervolume(Z[measured], [1.1, 1.1]) / hv_true)
    return out


def exclusive_hv(points: np.ndarray, front: np.ndarray, ref: float = 1.1) -> np.ndarray:
    """2-D, minimisation: the area each point would add to the hypervolume of ``front`` (vectorised over points)."""
    f = front[np.argsort(front[:, 1], kind="stable")]
    limit = np.concatenate([[ref], np.minimum(np.minimum.accumulate(f[:, 0]), ref)])  # x bound per y segment
    lo = np.concatenate([[-np.inf], f[:, 1]])
    hi = np.minimum(np.concatenate([f[:, 1], [ref]]), ref)
    height = np.clip(hi[None, :] - np.maximum(lo[None, :], points[:, 1:2]), 0.0, None)
    width = np.clip(limit[None, :] - points[:, 0:1], 0.0, None)
    return (height * width).sum(axis=1)


def _hv_batch(draws: List[np.ndarray], front: np.ndarray, open_: np.ndarray, n: int, shortlist: int = 1000):
    """Greedy batch by expected HV improvement over the draws (each draw: normalised objectives of every cell); each
    pick joins every draw's front with that draw's value, so the batch does not pile onto one spot."""

    fronts = [front[non_dominated_mask(front)] if len(front) else np.empty((0, 2)) for _ in draws]
    gain = np.mean([exclusive_hv(d, f) for d, f in zip(draws, fronts)], axis=0)
    cand = np.flatnonzero(open_)
    cand = cand[np.argsort(-gain[cand], kind="stable")[:shortlist]]
    picks: List[int] = []
    for _ in range(n):
        gain = np.mean([exclusive_hv(d[cand], f) for d, f in zip(draws, fronts)], axis=0)
        gain[np.isin(cand, picks)] = -1.0
        best = int(cand[int(np.argmax(gain))])
        picks.append(best)
        fronts = [np.vstack([f, d[best]]) for d, f in zip(draws, fronts)]
    return picks


def _onehot(genes: np.ndarray) -> np.ndarray:
    """One column per (edge, op): NB201 has 5 ops per edge."""
    X = np.zeros((genes.shape[0], genes.shape[1] * 5))
    X[np.arange(genes.shape[0])[:, None], np.arange(genes.shape[1]) * 5 + genes] = 1.0
    return X


def fitted_latency(lat: np.ndarray, genes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The best any architecture model could do for latency, optimistically: trees fitted on the whole table and
    evaluated on it (in-sample). Returns the prediction and the residuals log(latency / prediction)."""
    from sklearn.ensemble import ExtraTreesRegressor

    X = _onehot(genes)
    model = ExtraTreesRegressor(n_estimators=100, min_samples_leaf=3, random_state=0, n_jobs=1)
    pred = np.exp(model.fit(X, np.log(lat)).predict(X))
    return pred, np.log(lat / pred)


def learned_tau(acc: np.ndarray, genes: np.ndarray, n_train: int, seed: int) -> float:
    """Kendall tau among cells above 88 % of the best learned family (trees on one-hot) trained on n random cells."""

    X = _onehot(genes)
    rng = np.random.default_rng(seed)
    train = rng.choice(acc.size, n_train, replace=False)
    test = np.setdiff1d(np.flatnonzero(acc > 88.0), train)
    model = make_predictor("trees", seed=seed, with_uncertainty=False).fit(X[train], acc[train])
    return kendall_tau(acc[test], model.predict_mean(X[test]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="raspi4,pixel3", help=f"subset of {','.join(DEVICES)}")
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aim", default="recall,hv", help="batch rule(s): recall (P(on the front)), hv "
                        "(expected hypervolume improvement)")
    parser.add_argument("--mean-error", default="0", help="comma-separated sds (accuracy points) of the error of "
                        "the oracle's class means, e.g. 0,0.3,0.6: how good must a predictor be?")
    args = parser.parse_args(argv)
    if not TABLE.is_file():
        print(f"error: {TABLE} not found (shipped with the repository in benchmarks/data)", file=sys.stderr)
        return 2
    with gzip.open(TABLE, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    ops = [[r[f"e{k}"] for k in range(6)] for r in rows]
    names = sorted({o for row in ops for o in row})
    genes = np.array([[names.index(o) for o in row] for row in ops])
    functions = [cell_function(row) for row in ops]
    index = {f: i for i, f in enumerate(dict.fromkeys(functions))}
    classes = np.array([index[f] for f in functions])
    acc = np.array([float(r["acc_cifar10"]) for r in rows])
    counts = np.bincount(classes)
    good = acc > 88.0
    mean = (np.bincount(classes, acc) / counts)[classes]

    print(f"{len(rows)} cells, {len(index)} functional classes; Kendall tau among cells above 88 %: "
          f"oracle (class means) {kendall_tau(acc[good], mean[good]):.2f}, learned (trees, one-hot) "
          f"{learned_tau(acc, genes, 100, args.seed):.2f} at 100 random cells, "
          f"{learned_tau(acc, genes, 300, args.seed):.2f} at 300")
    for device in [d for d in args.devices.split(",") if d]:
        lat = np.array([float(r[DEVICES[device]]) for r in rows])

        true = non_dominated_mask(np.column_stack([-acc, lat]))
        twins = int(sum(1 for c in set(classes[true]) if np.sum(classes[true] == c) > 1))
        in_twins = int(sum(np.sum(classes[true] == c) for c in set(classes[true]) if np.sum(classes[true] == c) > 1))
        print(f"{device}: front of {int(true.sum())}, {in_twins} of them in {twins} classes with several front "
              f"members")
        fitted = fitted_latency(lat, genes)
        for latency in ("exact", "fitted"):
            model = fitted if latency == "fitted" else None
            if model is not None:
                print(f"  latency as the best fit of the whole table predicts it (Kendall tau "
                      f"{kendall_tau(lat, model[0]):.2f}, median |error| {np.median(np.abs(np.expm1(model[1]))):.1%}):")
            else:
                print("  latency known exactly:")
            for error in [float(e) for e in args.mean_error.split(",") if e.strip()]:
                class_error = error * np.random.default_rng([args.seed, 1]).standard_normal(counts.size)
                tau = kendall_tau(acc[good], (np.bincount(classes, acc) / counts + class_error)[classes][good])
                for aim in [a for a in args.aim.split(",") if a]:
                    found = oracle_search(acc, lat, classes, args.budget, args.batch, args.seed,
                                          class_error=class_error, mean_error=error, latency_model=model, aim=aim)
                    shown = "  ".join(f"@{b}: {r:.0%} (gap {g:.1e})" for b, (r, g) in found.items())
                    print(f"    class-mean error sd {error:.2f} (tau among good cells {tau:.2f}), aim {aim}: "
                          f"recall {shown}", flush=True)
    print("targets, with learned predictors: recall >= 50 % at 300 and >= 80 % at 500, gap <= 1e-3 by 200")
    return 0


if __name__ == "__main__":
    sys.exit(main())
