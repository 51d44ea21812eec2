"""`fleetnas supernets [--json]`: the super-networks this install knows (built-ins, entry points), their spaces."""
from __future__ import annotations

import argparse
import json

HELP = "list the super-networks and their search spaces"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print names, spaces and weights as JSON")


def _describe(name: str) -> dict:
    from fleetnas.host.errors import FleetnasError
    from fleetnas.host.supernets import get_supernet

    try:
        return get_supernet(name).describe()
    except FleetnasError as exc:  # e.g. a plug-in whose package is broken: list it, say why
        return {"name": name, "error": str(exc)}


def run(args: argparse.Namespace) -> int:
    from fleetnas.host.supernets import list_supernets

    described = [_describe(name) for name in list_supernets()]
    if args.json:
        print(json.dumps(described, indent=2, sort_keys=True))
        return 0
    for d in described:
        if "error" in d:
            print(f"{d['name']}: unavailable: {d['error']}")
            continue
        space = d["space"]
        size = f"{space['size']:,}" if space["size"] < 10 ** 6 else f"{space['size']:.2g}"
        print(f"{d['name']}  ({len(space['params'])} parameters, {size} configurations, "
              f"inputs {', '.join(d['inputs'])}; weights {d['weights']})")
        for p in space["params"]:
            values = p["options"] if p["type"] == "choice" else f"{p['low']}..{p['high']}"
            print(f"  {p['name']:<12} {values}")
    return 0
