"""`fleetnas-agent serve | connect | info | selftest`: parse arguments, build the service, hand over to the server."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import List, Optional

from google.protobuf.json_format import MessageToDict

from fleetnas.agent import __version__
from fleetnas.agent.app import make_service
from fleetnas.agent.board.device_info import DeviceInfoSource, format_info
from fleetnas.agent.config import load_agent_config
from fleetnas.agent.errors import AgentError
from fleetnas.agent.measure.emulate import EmulationTable, make_emulated_measure_fn
from fleetnas.agent.measure.service import DEFAULT_MAX_MEASURE_S
from fleetnas.agent.private_files import private_dir
from fleetnas.agent.rpc.auth import read_token_file
from fleetnas.agent.rpc.dialout import DEFAULT_BACKOFF_S, DialOut, DialTls, Identity
from fleetnas.agent.rpc.server import (DEFAULT_UPLOAD_IDLE_S, QUICK_CALL_THREADS, TlsFiles, check_listen,
                                       make_server, make_servicer, split_address, stop_server)
from fleetnas.agent.rpc.tunnel import TunnelServer
from fleetnas.agent.selftest import run_selftest
from fleetnas.agent.store.model_store import DEFAULT_MIN_FREE_BYTES, ModelStore

log = logging.getLogger("fleetnas.agent")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fleetnas-agent"


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the measuring service itself, the same for `serve` and `connect`."""
    parser.add_argument("--cache-dir", type=Path, default=_default_cache_dir(), help="model store and agent state")
    parser.add_argument("--cache-quota-mb", type=float, default=2048.0, help="model store size limit (LRU eviction)")
    parser.add_argument("--cache-min-free-mb", type=float, default=DEFAULT_MIN_FREE_BYTES / 2**20,
                        help="disk space the model store leaves free on its filesystem, evicting models for it "
                             f"(default {DEFAULT_MIN_FREE_BYTES >> 20})")
    parser.add_argument("--max-upload-mb", type=float, default=512.0, help="largest model accepted")
    parser.add_argument("--max-measure-s", type=float, default=DEFAULT_MAX_MEASURE_S,
                        help=f"ceiling on one measurement's run time in seconds, whatever a request asks "
                             f"(default {DEFAULT_MAX_MEASURE_S:g})")
    parser.add_argument("--upload-idle-s", type=float, default=DEFAULT_UPLOAD_IDLE_S,
                        help=f"close an upload that sends nothing for this long (default {DEFAULT_UPLOAD_IDLE_S:g} s)")
    parser.add_argument("--config", type=Path, help="agent config file (JSON or TOML): power meter, calibration, "
                        "drift canary; see fleetnas.agent.config")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    emulate = parser.add_argument_group("emulation (dry runs: latencies come from a table, see "
                                        "fleetnas.agent.measure.emulate)")
    emulate.add_argument("--emulate", type=Path, metavar="TABLE.csv", help="answer Measure from this table")
    emulate.add_argument("--emulate-params", metavar="C1,C2,...", help="columns naming the configuration")
    emulate.add_argument("--emulate-latency", metavar="COL", help="latency column (ms)")
    emulate.add_argument("--emulate-energy", metavar="COL", help="energy column (mJ per inference), optional")
    emulate.add_argument("--emulate-time-scale", type=float, default=1.0,
                         help="scale the emulated measurement time (default 1: as long as the real run)")


def build_service(args: argparse.Namespace):
    """(service, device info source) from the service options: the same for `serve` and `connect`."""
    private_dir(args.cache_dir)  # models, device id and reference model: the agent's user only, whatever the umask
    store = ModelStore(args.cache_dir / "store", quota_bytes=int(args.cache_quota_mb * 2**20),
                       max_upload_bytes=int(args.max_upload_mb * 2**20),
                       min_free_bytes=int(args.cache_min_free_mb * 2**20))
    measure_fn = None
    if args.emulate:
        if not (args.emulate_params and args.emulate_latency):
            raise ValueError("--emulate needs --emulate-params C1,C2,... and --emulate-latency COL")
        table = EmulationTable.from_csv(args.emulate, args.emulate_params.split(","), args.emulate_latency,
                                        args.emulate_energy)
        measure_fn = make_emulated_measure_fn(table, args.emulate_time_scale)
    service = make_service(store, args.cache_dir, load_agent_config(args.config), measure_fn=measure_fn,
                           emulated=measure_fn is not None, max_measure_s=args.max_measure_s)
    return service, DeviceInfoSource(service, state_dir=args.cache_dir, emulated=service.emulated)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _wait_for_stop(stop: threading.Event, poll_s: float = 0.2) -> None:
    """Return once a stop signal was handled. The kernel may deliver SIGTERM to any thread (gRPC's included), and
    Python runs the handler only when the main thread next runs Python code: a main thread blocked in an
    ``Event.wait()`` without timeout would never get there, and the agent would ignore ``systemctl stop`` or its
    host's death. Waiting in short slices lets the handler run."""
    while not stop.wait(poll_s):
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetnas-agent", description="fleetnas device agent: runs and times models.")
    parser.add_argument("--version", action="version", version=f"fleetnas-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    serve = sub.add_parser("serve", help="serve the gRPC API")
    serve.add_argument("--listen", default="127.0.0.1:50051", metavar="HOST:PORT",
                       help="address to bind (default 127.0.0.1:50051; port 0 picks a free port)")
    serve.add_argument("--token-file", type=Path, help="file holding the bearer token callers must present")
    serve.add_argument("--tls-cert", type=Path, help="server certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    serve.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA (mutual TLS)")
    serve.add_argument("--port-file", type=Path, help="write the bound port here once serving (for scripts)")
    add_service_arguments(serve)
    connect = sub.add_parser("connect", help="dial out to a host's hub and serve its calls over that connection "
                                             "(boards behind NAT or a firewall)")
    connect.add_argument("hub", metavar="HOST:PORT", help="the address the host's `--listen` hub is reachable at")
    connect.add_argument("--token-file", type=Path,
                         help="this device's token, the file the host's devices.toml names as its token_file")
    connect.add_argument("--name", help="this device's name in the host's devices.toml (default: the host name)")
    connect.add_argument("--tls-ca", type=Path, help="CA certificate that signed the hub's TLS certificate")
    connect.add_argument("--tls-cert", type=Path, help="client certificate, for hubs that require mutual TLS")
    connect.add_argument("--tls-key", type=Path, help="client key, with --tls-cert")
    connect.add_argument("--tls-server-name", help="name in the hub's certificate, when it differs from HOST")
    connect.add_argument("--reconnect-max-s", type=float, default=DEFAULT_BACKOFF_S[1],
                         help=f"longest wait between reconnection attempts (default {DEFAULT_BACKOFF_S[1]:g} s)")
    add_service_arguments(connect)
    info = sub.add_parser("info", help="print this board's fingerprint, runtimes, sensors and state")
    info.add_argument("--json", action="store_true")
    info.add_argument("--cache-dir", type=Path, default=_default_cache_dir())
    selftest = sub.add_parser("selftest", help="measure a built-in reference model with every installed runtime")
    selftest.add_argument("--json", action="store_true")
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    host, _ = check_listen(args.listen)  # before the slower start-up: a taken port fails at once
    token = read_token_file(args.token_file) if args.token_file else None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
    tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        log.warning("listening on %s without --token-file: anyone who can reach it can run models here", host)
    service, source = build_service(args)
    server, port = make_server(service, listen=args.listen, device_info=source.device_info,
                               device_id=source.device_id, token=token, tls=tls,
                               upload_idle_s=args.upload_idle_s)
    stop = _stop_on_signals()
    if args.port_file:
        args.port_file.write_text(f"{port}\n")
    print(f"fleetnas-agent {__version__} serving on {host}:{port} (device {source.device_id[:12]}, "
          f"{'token' if token else 'no token'}, {'TLS' if tls else 'plaintext'}, store {args.cache_dir})", flush=True)
    _wait_for_stop(stop)
    log.info("stopping: cancelling the running measurement")
    stop_server(server, service, grace_s=3.0)
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        _, hub_port = split_address(args.hub)
    except ValueError:
        hub_port = 0
    if hub_port == 0:
        raise ValueError(f"the hub address must be HOST:PORT (e.g. nas-host.example.org:50052), got {args.hub!r}")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together (mutual TLS)")
    if not args.token_file and not args.tls_cert:
        raise ValueError("connect needs --token-file (this device's token from the host's devices.toml), or a client "
                         "certificate (--tls-cert/--tls-key) the hub verifies")
    if args.reconnect_max_s <= 0:
        raise ValueError(f"--reconnect-max-s must be positive, got {args.reconnect_max_s:g}")
    token = read_token_file(args.token_file) if args.token_file else None
    tls = (DialTls(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)
           if args.tls_ca or args.tls_cert else None)
    if tls is None and token:
        log.warning("dialling %s without TLS: calls and models cross the network unencrypted (the token itself is "
                    "never sent); add --tls-ca for an encrypted, verified connection", args.hub)
    name = args.name or socket.gethostname().split(".")[0]
    service, source = build_service(args)
    servicer = make_servicer(service, source.device_info, source.device_id, upload_idle_s=args.upload_idle_s)
    tunnel = TunnelServer(servicer, workers=servicer.admission.slots + QUICK_CALL_THREADS)
    identity = Identity(name, source.device_id, lambda: source.fingerprint.fingerprint_sha256, __version__)
    dialout = DialOut(args.hub, tunnel, identity, token=token, tls=tls,
                      backoff_s=(min(DEFAULT_BACKOFF_S[0], args.reconnect_max_s), args.reconnect_max_s))
    stop = _stop_on_signals()
    print(f"fleetnas-agent {__version__} dialling {args.hub} as {name} (device {source.device_id[:12]}, "
          f"{'token' if token else 'no token'}, {'TLS' if tls else 'plaintext'}, store {args.cache_dir})", flush=True)
    runner = threading.Thread(target=dialout.run, args=(stop,), name="dialout", daemon=True)
    runner.start()
    _wait_for_stop(stop)
    log.info("stopping: cancelling the running measurement")
    service.shutdown()
    runner.join(timeout=5)
    tunnel.close()
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = DeviceInfoSource(None, state_dir=args.cache_dir).device_info()
    if args.json:
        print(json.dumps(MessageToDict(info, preserving_proto_field_name=True), indent=2, sort_keys=True))
    else:
        print(format_info(info))
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="fleetnas-selftest-") as tmp:
        return run_selftest(Path(tmp), as_json=args.json)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"serve": cmd_serve, "connect": cmd_connect, "info": cmd_info, "selftest": cmd_selftest}
    try:
        return handlers[args.command](args)
    except (AgentError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
