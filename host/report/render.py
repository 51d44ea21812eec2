"""Write a run folder's results from its journal: per device class the front and all points (CSV + JSON), plots, and
a summary; ``report_data`` is what `fleetnas report --json` prints.

    RUN/summary.json, RUN/summary.md
    RUN/<class>/front.csv, front.json      the front: configuration, objectives, every statistic, provenance
    RUN/<class>/points.csv, points.json    every evaluated sub-network
    RUN/<class>/front.png                  front over all points (latency vs accuracy)
    RUN/<class>/hypervolume.png            hypervolume over evaluations
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Sequence

from fleetnas.host.report.fronts import ClassFront, Point, run_fronts
from fleetnas.host.store.run_store import RunStore


def replayed_note(data: Dict[str, Any]) -> str:
    """", N answered from an agent's memory" for the summary lines ("" when none was)."""
    n = data.get("replayed", 0)
    return f", {n} answered from an agent's memory of the run's earlier request" if n else ""


def point_json(p: Point) -> Dict[str, Any]:
    d = asdict(p)
    d["config"] = p.config
    d["accuracy_drop"] = p.accuracy_drop
    return d


def _int8_keys(p: Point) -> Dict[str, Any]:
    """For an int8 model: the float network's accuracy, the drop and the model evaluated (nothing for fp32)."""
    if p.int8_accuracy is None:
        return {}
    return {"float_accuracy": p.float_accuracy, "int8_accuracy": p.int8_accuracy, "accuracy_drop": p.accuracy_drop,
            "accuracy_model": p.accuracy_model}


def _write_csv(path: Path, points: Sequence[Point]) -> None:
    rows = [p.row() for p in points]
    fields: List[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields or ["config"])
        writer.writeheader()
        writer.writerows(rows)


def report_data(run_dir: Path, fronts: Dict[str, ClassFront]) -> Dict[str, Any]:
    settings = RunStore.read_settings(run_dir)
    with RunStore.open(run_dir) as store:
        validations = len(store.subnets())
        rounds = store.fleet_round_reports()
    per_device: Dict[str, int] = {}
    cache_hits = 0
    for f in fronts.values():
        for p in f.points:
            if p.source == "cache":
                cache_hits += 1
            else:
                per_device[p.device_name] = per_device.get(p.device_name, 0) + 1
    subnets = {p.config_key for f in fronts.values() for p in f.points}
    return {
        "run_dir": str(run_dir),
        "supernet": settings.get("supernet"),
        "objectives": list(settings.get("objectives") or []),
        "seed": settings.get("seed"),
        "budget": settings.get("budget"),
        "tactic": settings.get("tactic"),
        "candidates_evaluated": sum(len(f.points) + f.failed for f in fronts.values()),
        "subnets_evaluated": len(subnets),
        "measurements": sum(per_device.values()),
        "measurements_per_device": per_device,
        "cache_hits": cache_hits,
        # measured in this run but answered from an agent's memory of the run's request (a retry or a resumed host)
        "replayed": sum(1 for f in fronts.values() for p in f.points if p.replayed),
        "fronts": {c: [{"config": p.config, "accuracy": p.accuracy, "latency_ms": p.latency_ms,
                        "energy_mj": p.energy_mj, "device": p.device_name, "model_sha256": p.model_sha256,
                        "stability": p.stability, "block_median_cv": p.block_median_cv, **_int8_keys(p)}
                       for p in f.front] for c, f in fronts.items()},
        "unstable_front_members": {c: sum(1 for p in f.front if p.stability == "UNSTABLE")
                                   for c, f in fronts.items()},
        "hypervolume": {c: (f.hv_curve[-1] if f.hv_curve else 0.0) for c, f in fronts.items()},
        # in the minimisation form the hypervolume uses: (1 - accuracy, latency_ms[, energy_mj])
        "hypervolume_reference": {c: list(f.reference) for c, f in fronts.items()},
        "failed": {c: f.failed for c, f in fronts.items()},
        "errors": {c: list(f.errors[:5]) for c, f in fronts.items() if f.errors},
        "fleet_mode": settings.get("fleet_mode", "independent"),
        "precision": settings.get("precision", "fp32"),
        # distinct sub-networks whose accuracy was evaluated (or read from the accuracy cache) in this run
        "validations": validations,
        "max_validations": settings.get("validations"),
        "per_class": {c: {"measured": f.measured, "from_cache": len(f.points) - f.measured, "failed": f.failed}
                      for c, f in fronts.items()},
        # a joint search's predictors at its last model-based round: the accuracy model family, and per class the
        # cost model's inputs and leave-one-out RMSE in units of that class's measured std
        "predictors": ({"accuracy_model": rounds[-1].get("accuracy_model"),
                        "cost_models": rounds[-1].get("cost_models", {}), "rounds": len(rounds)} if rounds else None),
    }


def fleet_lines(data: Dict[str, Any]) -> List[str]:
    """A joint run's spending per class: ``rpi5: 300 measured, 0 from cache; validations shared by the fleet: 323``,
    and the class's cost predictor's error when the search has fitted one."""
    if data.get("fleet_mode") != "joint":
        return []
    cost_models = (data.get("predictors") or {}).get("cost_models", {})
    lines = []
    for c, n in data["per_class"].items():
        line = (f"{c}: {n['measured']} measured, {n['from_cache']} from cache; validations shared by the fleet: "
                f"{data['validations']}")
        if c in cost_models:
            model = cost_models[c]
            line += f"; cost predictor ({model['inputs']}) leave-one-out RMSE {model['loo_rmse']:.3f} std"
        else:   # a class with two costs: a predictor per cost, named class/cost
            for name, model in cost_models.items():
                if name.startswith(f"{c}/"):
                    line += (f"; {name.split('/', 1)[1]} predictor ({model['inputs']}) leave-one-out RMSE "
                             f"{model['loo_rmse']:.3f} std")
        lines.append(line)
    return lines


def plot_class(front: ClassFront, out_dir: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    ax.scatter([p.latency_ms for p in front.points], [100 * p.accuracy for p in front.points], s=14, c="0.65",
               label=f"evaluated ({len(front.points)})")
    ax.step([p.latency_ms for p in front.front], [100 * p.accuracy for p in front.front], where="post", c="C3",
            marker="o", ms=5, label=f"Pareto front ({len(front.front)})")
    ax.set_xlabel("measured latency, median (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{front.device_class}: accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "front.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot(range(1, len(front.hv_curve) + 1), front.hv_curve, c="C0")
    ax.set_xlabel("evaluations (count)")
    ax.set_ylabel(f"hypervolume ({_hv_units(front.objectives)})")
    ax.set_title(f"{front.device_class}: hypervolume over evaluations\nreference point "
                 f"{_hv_reference(front)}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "hypervolume.png", metadata={
        "Title": f"{front.device_class}: hypervolume over evaluations",
        "Description": f"hypervolume ({_hv_units(front.objectives)}) of (1 - accuracy, latency ms[, energy mJ]) "
                       f"after each evaluation; reference point {_hv_reference(front)}"})
    plt.close(fig)


_HV_UNITS = {"accuracy": "", "latency": "ms", "energy": "mJ"}


def _hv_units(objectives: Sequence[str]) -> str:
    """The hypervolume's unit: (1 - accuracy) is unitless, so it is the product of the other objectives' units."""
    units = [_HV_UNITS[o] for o in objectives if _HV_UNITS.get(o)]
    return " x ".join(units) if units else "unitless"


def _hv_reference(front: ClassFront) -> str:
    """The reference point in the minimisation form the hypervolume uses: (1 - accuracy, latency ms[, energy mJ])."""
    names = {"accuracy": "1 - accuracy", "latency": "latency ms", "energy": "energy mJ"}
    return "(" + ", ".join(f"{names.get(o, o)} {r:.4g}" for o, r in zip(front.objectives, front.reference)) + ")"


def stability_cell(p: Point) -> str:
    """``STABLE 1.5%``: the agent's verdict and the block-median CV it rests on."""
    if not p.stability:
        return "-"
    return p.stability + ("" if p.block_median_cv is None else f" {100 * p.block_median_cv:.1f}%")


def format_front_table(front: ClassFront) -> str:
    int8 = any(p.int8_accuracy is not None for p in front.front)
    header = f"{'#':>2}  {'accuracy':>8}" + (f"  {'float':>7}  {'drop':>6}" if int8 else "") + f"  {'latency ms':>10}"
    has_energy = "energy" in front.objectives
    header += f"  {'energy mJ':>9}" if has_energy else ""
    header += f"  {'stability (CV)':<15}"
    lines = [f"{front.device_class}: front of {len(front.front)} (of {len(front.points)} evaluated)"
             + ("; accuracy of the int8 models, float: of the float networks, drop in points" if int8 else ""),
             header + "  config"]
    for i, p in enumerate(front.front):
        line = f"{i:>2}  {100 * p.accuracy:>7.2f}%"
        if int8:
            line += (f"  {100 * p.float_accuracy:>6.2f}%  {100 * p.accuracy_drop:>+5.2f}" if p.accuracy_drop is not None
                     else f"  {'-':>7}  {'-':>6}")
        line += f"  {p.latency_ms:>10.4f}"
        line += f"  {p.energy_mj:>9.4f}" if has_energy else ""
        line += f"  {stability_cell(p):<15}"
        lines.append(f"{line}  {json.dumps(p.config, separators=(',', ':'))}")
    unstable = [str(i) for i, p in enumerate(front.front) if p.stability == "UNSTABLE"]
    if unstable:
        lines.append(f"UNSTABLE latency (block-median CV > 10 %) for #{', #'.join(unstable)}: re-measure those "
                     f"(fleetnas export ... then fleetnas measure) before trusting them")
    return "\n".join(lines)


def write_report(run_dir: Path, plots: bool = True) -> Dict[str, Any]:
    fronts = run_fronts(run_dir)
    data = report_data(run_dir, fronts)
    for c, f in fronts.items():
        out = Path(run_dir) / c
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(out / "front.csv", f.front)
        _write_csv(out / "points.csv", f.points)
        (out / "front.json").write_text(json.dumps({"device_class": c, "objectives": list(f.objectives),
                                                    "front": [point_json(p) for p in f.front]}, indent=1))
        (out / "points.json").write_text(json.dumps([point_json(p) for p in f.points], indent=1))
        if plots and f.points:
            plot_class(f, out)
    (Path(run_dir) / "summary.json").write_text(json.dumps(data, indent=2, sort_keys=True))
    md = [f"# fleetnas run: {data['supernet']} ({', '.join(data['objectives'])})", "",
          f"{data['candidates_evaluated']} candidates evaluated ({data['subnets_evaluated']} distinct sub-networks), "
          f"{data['measurements']} measurements on boards, {data['cache_hits']} from the cache"
          f"{replayed_note(data)}.", ""]
    for c, f in fronts.items():
        md += ["```", format_front_table(f), "```", f"![{c} front]({c}/front.png)", ""]
    (Path(run_dir) / "summary.md").write_text("\n".join(md))
    data["tables"] = {c: format_front_table(f) for c, f in fronts.items()}
    return data
