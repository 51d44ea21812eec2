"""`fleetnas hub --listen HOST:PORT --devices FILE`: accept the devices file's dial-in agents and show who is
connected, until Ctrl-C. For setting boards up: is each one's `fleetnas-agent connect` getting through?"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from fleetnas.host.commands.listen import add_listen_arguments, say

HELP = "accept dial-in agents (boards behind NAT) and show which are connected, until Ctrl-C"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=Path, required=True, help='devices.toml with address = "dial-in" entries')
    parser.add_argument("--for-s", type=float, default=0.0,
                        help="stop after this many seconds and print who connected (default: until Ctrl-C)")
    parser.add_argument("--json", action="store_true", help="at the end, print the connected devices as JSON")
    add_listen_arguments(parser, required=True, wait_s=0.0)


def run(args: argparse.Namespace) -> int:
    from fleetnas.host.fleet.devices import load_devices
    from fleetnas.host.commands.listen import dial_in_hub
    registry = load_devices(args.devices)
    if args.for_s < 0:
        from fleetnas.host.errors import UsageError
        raise UsageError(f"--for-s must not be negative, got {args.for_s:g}")
    with dial_in_hub(args, registry, announce=True) as hub:
        try:
            threading.Event().wait(args.for_s if args.for_s > 0 else None)
        except KeyboardInterrupt:
            pass
        connected = hub.connections()
    rows = [{"name": c.device_name, "fingerprint_sha256": c.fingerprint_sha256, "agent_version": c.agent_version,
             "peer": c.peer, "connected_unix_s": c.connected_unix_s} for c in connected.values()]
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        say(f"{len(rows)} dial-in device(s) connected at the end: {', '.join(r['name'] for r in rows) or 'none'}")
    return 0
