"""`--listen ADDR` and its options, shared by `fleetnas search`, `devices check` and `hub`: a hub for the devices
file's dial-in devices (boards behind NAT whose agent runs `fleetnas-agent connect HOST:PORT`)."""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

DEFAULT_WAIT_S = 30.0


def add_listen_arguments(parser: argparse.ArgumentParser, *, required: bool = False,
                         wait_s: float = DEFAULT_WAIT_S) -> None:
    group = parser.add_argument_group("dial-in devices (address = \"dial-in\": their agents connect to this host)")
    group.add_argument("--listen", metavar="HOST:PORT", required=required,
                       help="accept dial-in agents here (an address they can reach; port 0 picks a free port)")
    group.add_argument("--dial-in-wait-s", type=float, default=wait_s,
                       help=f"wait this long for the dial-in devices to connect before going on (default {wait_s:g}); "
                            f"a device that connects later still joins")
    group.add_argument("--dial-in-ping-s", type=float, default=5.0,
                       help="ping interval on each stream; three silent intervals end it (default 5)")
    group.add_argument("--listen-tls-cert", type=Path, help="the hub's TLS certificate (PEM)")
    group.add_argument("--listen-tls-key", type=Path, help="the hub's TLS private key (PEM)")
    group.add_argument("--listen-tls-client-ca", type=Path,
                       help="require agents to present a certificate signed by this CA, issued for their device name")


def _check(args: argparse.Namespace) -> None:
    from fleetnas.host.errors import UsageError
    host, sep, port = args.listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen must be HOST:PORT (e.g. 0.0.0.0:50052), got {args.listen!r}")
    if bool(args.listen_tls_cert) != bool(args.listen_tls_key):
        raise UsageError("--listen-tls-cert and --listen-tls-key go together")
    if args.listen_tls_client_ca and not args.listen_tls_cert:
        raise UsageError("--listen-tls-client-ca needs --listen-tls-cert and --listen-tls-key")
    if args.dial_in_ping_s <= 0 or args.dial_in_wait_s < 0:
        raise UsageError("--dial-in-ping-s must be positive and --dial-in-wait-s not negative")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def dial_in_hub(args: argparse.Namespace, devices, *, announce: bool = False) -> Iterator[Optional[object]]:
    """A hub for the dial-in entries of ``devices`` while the block runs (None when there are none and no --listen);
    dial-in devices are reachable through Device.client() meanwhile. ``announce``: a line per connect/disconnect."""
    from fleetnas.host.errors import UsageError
    from fleetnas.host.fleet.dial_in import dial_in_devices, set_hub
    from fleetnas.host.fleet.hub import Hub, HubTls
    from fleetnas.host.fleet.last_seen import LastSeen
    dial_in = dial_in_devices(devices)
    listen = getattr(args, "listen", None)
    if not listen:
        if dial_in:
            raise UsageError(f"{', '.join(d.name for d in dial_in)}: dial-in device(s) need --listen HOST:PORT, an "
                             f"address of this host their agents can reach")
        yield None
        return
    _check(args)
    if not dial_in:
        raise UsageError('--listen: no device in the devices file has address = "dial-in"; nothing would connect')
    tls = (HubTls(args.listen_tls_cert, args.listen_tls_key, args.listen_tls_client_ca)
           if args.listen_tls_cert else None)
    seen = LastSeen()

    def changed(name: str, connection) -> None:
        seen.record(name, fingerprint_sha256=connection.fingerprint_sha256 if connection else "",
                    peer=connection.peer if connection else "")
        if announce:
            say(f"{name} connected from {connection.peer} (fingerprint {connection.fingerprint_sha256[:10]}, "
                f"agent {connection.agent_version})" if connection else f"{name} disconnected")

    hub = Hub(dial_in, tls=tls, ping_s=args.dial_in_ping_s, on_change=changed)
    port = hub.start(listen)
    set_hub(hub)
    try:
        names = [d.name for d in dial_in]
        say(f"listening on {listen.rpartition(':')[0]}:{port} ({'TLS' if tls else 'plaintext'}) for dial-in "
            f"device(s) {', '.join(names)}")
        if args.dial_in_wait_s > 0:
            missing = hub.wait_for(names, args.dial_in_wait_s)
            if missing:
                say(f"not connected after {args.dial_in_wait_s:g} s: {', '.join(missing)} (they join when they "
                    f"connect)")
        yield hub
    finally:
        set_hub(None)
        hub.stop()
