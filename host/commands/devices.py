"""`fleetnas devices check --devices FILE [--json]`: is every board reachable and usable, and what is it?"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict

from fleetnas.host.commands.listen import add_listen_arguments

HELP = "check the boards of a devices file: reachable, fingerprint, runtimes, sensors, temperature, clock offset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check",), help="check: contact every device and report")
    parser.add_argument("--devices", type=Path, required=True, help="devices.toml ([[device]] name, address, class)")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="per-device deadline")
    parser.add_argument("--json", action="store_true")
    add_listen_arguments(parser, wait_s=10.0)


def check_device(device, timeout_s: float, contact: bool = True) -> Dict[str, Any]:
    from fleetnas.host.errors import FleetnasError
    row: Dict[str, Any] = {"name": device.name, "class": device.device_class, "address": device.address,
                           "reachable": False, "usable": False, "problem": ""}
    if device.dial_in:
        row["last_seen"] = last_seen(device.name)
    if not contact:
        row["problem"] = "dial-in device: add --listen HOST:PORT to let its agent connect and check it"
        return row
    try:
        with device.client(timeout_s=timeout_s) as client:
            sent = time.time_ns()
            info = client.device_info(timeout_s=timeout_s)
            received = time.time_ns()
    except FleetnasError as exc:
        row["problem"] = str(exc)
        return row
    fp = info.fingerprint
    runtimes = [f"{r.name} {r.version}" for r in info.available_runtimes]
    temps = info.temperatures_c
    row.update(
        reachable=True, device_id=info.device_id, agent_version=info.agent_version,
        fingerprint_sha256=info.fingerprint_sha256, cpu=fp.cpu_model, machine=fp.machine,
        cpus=fp.cpu_count_logical, board=fp.board_model, os=fp.os_name, runtimes=runtimes,
        sensors=[f"{s.name}{'' if s.readable else ' (unreadable)'}" for s in info.power_sensors],
        max_temp_c=max(temps) if temps else None, emulated=info.emulated, queue_length=info.queue_length,
        measurements_done=info.measurements_done,
        # agent clock minus the midpoint of our request: what timestamps from this board are off by
        clock_offset_ms=(info.clock_unix_ns - (sent + received) / 2) / 1e6, rtt_ms=(received - sent) / 1e6)
    if not info.available_runtimes:
        row["problem"] = "no runtime is available on the agent; install one there (e.g. pip install onnxruntime)"
    else:
        row["usable"] = True
    return row


def last_seen(name: str) -> str:
    """"connected" while its agent is connected to this process's hub, else when it last was."""
    from fleetnas.host.fleet.dial_in import current_hub
    from fleetnas.host.fleet.last_seen import LastSeen, describe
    hub = current_hub()
    if hub is not None and hub.stream(name) is not None:
        return "connected"
    entry = LastSeen().get(name)
    return describe(entry["unix_s"] if entry else None)


def format_rows(rows) -> str:
    from rich.console import Console
    from rich.table import Table
    table = Table(title="devices")
    dial_in = any("last_seen" in r for r in rows)
    for col in ("device", "class", "reachable", "fingerprint", "runtimes", "sensors", "temp °C", "clock offset ms",
                *(("last seen",) if dial_in else ()), "problem"):
        table.add_column(col)
    for r in rows:
        fp = f"{r['fingerprint_sha256'][:10]} {r['cpu']} x{r['cpus']}" if r["reachable"] else ""
        if r.get("emulated"):
            fp += " (emulated)"
        table.add_row(r["name"], r["class"], "yes" if r["reachable"] else "NO", fp, ", ".join(r.get("runtimes", [])),
                      ", ".join(r.get("sensors", [])) or ("none" if r["reachable"] else ""),
                      "" if r.get("max_temp_c") is None else f"{r['max_temp_c']:.0f}",
                      "" if not r["reachable"] else f"{r['clock_offset_ms']:+.1f}",
                      *((r.get("last_seen", ""),) if dial_in else ()),
                      r["problem"] if len(r["problem"]) <= 40 else r["problem"][:37] + "...")
    console = Console(width=None if sys.stdout.isatty() else 160)
    with console.capture() as cap:
        console.print(table)
    return cap.get()


def run(args: argparse.Namespace) -> int:
    from fleetnas.host.fleet.devices import load_devices
    from fleetnas.host.commands.listen import dial_in_hub
    registry = load_devices(args.devices)
    contact_dial_in = bool(args.listen)
    # without --listen the dial-in devices are listed (with when they were last seen), not contacted
    with dial_in_hub(args, registry if contact_dial_in else [d for d in registry if not d.dial_in]):
        with ThreadPoolExecutor(max_workers=min(16, len(registry))) as pool:
            rows = list(pool.map(lambda d: check_device(d, args.timeout_s, contact_dial_in or not d.dial_in),
                                 registry.devices))
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        print(format_rows(rows), end="")
    bad = [r for r in rows if not r["usable"]]
    for r in bad if not args.json else []:
        print(f"error: {r['name']} ({r['address']}) unusable: {r['problem']}", file=sys.stderr)
    return 1 if bad else 0
