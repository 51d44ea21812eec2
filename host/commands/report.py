"""`fleetnas report DIR [--json]`: re-render a run folder's fronts, tables, plots and summary from its journal."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "re-render a search run's fronts, plots and summary from its journal"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="DIR", help="a `fleetnas search --out` folder")
    parser.add_argument("--json", action="store_true",
                        help="print candidates_evaluated, measurements and fronts (per device class) as JSON")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    from fleetnas.host.report.render import fleet_lines, replayed_note, write_report
    data = write_report(args.run_dir, plots=not args.no_plots)
    tables = data.pop("tables")
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    for table in tables.values():
        print(table)
        print()
    print(f"{data['candidates_evaluated']} candidates evaluated ({data['subnets_evaluated']} sub-networks), "
          f"{data['measurements']} measurements on boards, {data['cache_hits']} from the cache"
          f"{replayed_note(data)}; written to {args.run_dir}")
    for c, errors in data["errors"].items():
        print(f"{c}: {data['failed'][c]} candidate(s) failed, e.g. {errors[0]}")
    for line in fleet_lines(data):
        print(line)
    return 0
