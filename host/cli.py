"""`fleetnas`: the host command line. Each sub-command lives in fleetnas.host.commands.<name>.

A command module defines HELP (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules import their
heavy dependencies (torch, pymoo, ...) inside ``run`` so that argument errors and `--help` answer at once, and so
that a board install (no ``[host]`` extra) gets one line saying what to install instead of a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata
from typing import List, Optional

from fleetnas.host.errors import FleetnasError, missing_extra

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
    "hub": "fleetnas.host.commands.hub",
}


def package_version() -> str:
    try:
        return metadata.version("fleetnas")
    except metadata.PackageNotFoundError:   # a source checkout on sys.path, not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetnas", description="Hardware-aware NAS on a fleet of real boards.")
    parser.add_argument("--version", action="version", version=f"fleetnas {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def missing_extra_message(command: str, exc: ModuleNotFoundError) -> Optional[str]:
    """One line naming the extra to install when ``exc`` is about an optional package of fleetnas, else None."""
    extra = missing_extra(exc)
    if extra is None:
        return None
    return f"fleetnas {command} needs the {extra} extra ({exc}): pip install 'fleetnas[{extra}]'"


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except FleetnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = missing_extra_message(args.command, exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
