"""`fleetnas`: the host command line. Each sub-command lives in fleetnas.host.commands.<name>.

A command module defines HELP (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules import their
heavy dependencies (torch, pymoo, ...) inside ``run`` so that `fleetnas measure --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from fleetnas.host.errors import FleetnasError

# name -> module; the order is the order of `fleetnas --help`.
COMMANDS = {
    "measure": "fleetnas.host.commands.measure",
    "devices": "fleetnas.host.commands.devices",
    "search": "fleetnas.host.commands.search",
    "report": "fleetnas.host.commands.report",
    "demo": "fleetnas.host.commands.demo",
    "bench": "fleetnas.host.commands.bench",
    "supernets": "fleetnas.host.commands.supernets",
    "export": "fleetnas.host.commands.export",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetnas", description="Hardware-aware NAS on a fleet of real boards.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except FleetnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
