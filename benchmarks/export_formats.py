"""Export cost per sub-network in every registered format and precision: cold export (extract + convert + verify,
into a fresh cache), cached export (the file read a repeated request costs), model size and the verified error.

    nice python benchmarks/export_formats.py [--tiny 3] [--ofa 1] [--formats onnx,pte] [--seed 0] [--json]

`tiny` and `ofa-mbv3` (random weights unless you have its checkpoint: latency and size are real, int8 agreement on
random logits is not meaningful and may fail verification, which is reported, not hidden). The first cold export of
a format also pays its converter's import (ExecuTorch: seconds), so it is shown apart from the others. A format whose
extra is missing is listed with its install hint. On a shared machine every figure carries the neighbours' load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np


def export_rows(supernet_name: str, n_configs: int, seed: int, formats: List[str],
                show=lambda row: None) -> List[Dict[str, Any]]:
    from fleetnas.host.errors import FleetnasError
    from fleetnas.host.export.registry import get_exporter
    from fleetnas.host.supernets import get_supernet

    supernet = get_supernet(supernet_name)
    rng = np.random.default_rng(seed)
    configs = [supernet.space.sample(rng) for _ in range(n_configs)]
    rows = []
    for fmt in formats:
        for precision in get_exporter(fmt).precisions:
            exporter = get_exporter(fmt, precision)
            row: Dict[str, Any] = {"supernet": supernet_name, "format": fmt, "precision": precision,
                                   "configs": n_configs}
            try:
                exporter.check()
            except FleetnasError as exc:
                rows.append({**row, "skipped": str(exc)})
                show(rows[-1])
                continue
            cold, cached, sizes, errors, failures = [], [], [], [], []
            for config in configs:
                with tempfile.TemporaryDirectory() as cache:
                    start = time.perf_counter()
                    try:
                        exported = exporter.export(supernet, config, cache)
                    except FleetnasError as exc:
                        failures.append(str(exc)[:200])
                        continue
                    cold.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    again = exporter.export(supernet, config, cache)
                    cached.append(time.perf_counter() - start)
                    assert again.cache_hit and again.sha256 == exported.sha256
                    sizes.append(exported.size_bytes)
                    errors.append(exported.max_abs_error)
            rows.append({**row, "first_cold_s": cold[0] if cold else None,
                         "cold_s_median": statistics.median(cold[1:]) if len(cold) > 1 else None,
                         "cached_ms_median": statistics.median(cached) * 1e3 if cached else None,
                         "size_kb_median": statistics.median(sizes) / 1024 if sizes else None,
                         "max_error": max(errors) if errors else None, "failures": failures})
            show(rows[-1])
    return rows


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_row(r: Dict[str, Any]) -> None:
    if "skipped" in r:
        print(f"{r['supernet']:9s} {r['format']:6s} {r['precision']:5s} {r['configs']:2d}  skipped: {r['skipped']}")
        return
    notes = f"{len(r['failures'])} failed: {r['failures'][0]}" if r["failures"] else ""
    print(f"{r['supernet']:9s} {r['format']:6s} {r['precision']:5s} {r['configs']:2d} "
          f"{fmt(r['first_cold_s'], '10.1f')} {fmt(r['cold_s_median'], '7.1f')} "
          f"{fmt(r['cached_ms_median'], '9.1f')} {fmt(r['size_kb_median'], '8.0f')} "
          f"{fmt(r['max_error'], '9.1e')}  {notes}", flush=True)


def main(argv=None) -> int:
    from fleetnas.host.export.registry import EXPORTERS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", type=int, default=3, help="tiny sub-networks per format and precision")
    parser.add_argument("--ofa", type=int, default=1, help="ofa-mbv3 sub-networks (slow: 0 skips them)")
    parser.add_argument("--formats", default=",".join(EXPORTERS.names()))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    show = (lambda row: None) if args.json else print_row
    if not args.json:
        print(f"{'supernet':9s} {'format':6s} {'prec':5s} {'n':>2s} {'1st cold s':>10s} {'cold s':>7s} "
              f"{'cached ms':>9s} {'size KB':>8s} {'max error':>9s}  notes", flush=True)
    rows = export_rows("tiny", args.tiny, args.seed, formats, show) if args.tiny else []
    if args.ofa:
        rows += export_rows("ofa-mbv3", args.ofa, args.seed, formats, show)
    if args.json:
        print(json.dumps({"rows": rows, "load_average": os.getloadavg()}, indent=2))
        return 0
    print(f"load average {os.getloadavg()[0]:.1f} (int8 max error: relative L2 on the calibration inputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
