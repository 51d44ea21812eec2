"""Serving: a gRPC server for an AgentService, with token auth, TLS, health checking and reflection.

    with serve(service, listen="127.0.0.1:0", device_info=..., device_id=...) as (server, port): ...

Binds 127.0.0.1 unless told otherwise, and checks the address first: a taken port or a malformed address is one
clear error, never a traceback or a silently different port. Slow or stalled callers cannot starve the board:
uploads, measurements and long-lived streams hold bounded slots (fleetnas.agent.rpc.admission), uploads idle past
``upload_idle_s`` are closed, and the thread pool is sized above the slots, so health checks and GetDeviceInfo
always find a thread. The token check is an interceptor (fleetnas.agent.rpc.auth);
the standard health service stays open so that load balancers and `grpc_health_probe` work without the token.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import socket
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fleetnas.agent.measure.service import AgentService
from fleetnas.agent.rpc.admission import DEFAULT_UPLOAD_IDLE_S, Admission, IdleWatch, ThreadWaitInterceptor
from fleetnas.agent.rpc.auth import TokenAuthInterceptor
from fleetnas.agent.rpc.servicer import AgentServicer
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.agent.v1 import agent_pb2_grpc

log = logging.getLogger("fleetnas.agent")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Agent"].full_name
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # uploads stream 1 MiB chunks; nothing else comes close
QUICK_CALL_THREADS = 8  # threads beyond the slots: health, device info, store queries, refusals


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Optional[Path] = None  # set: mutual TLS, clients must present a certificate signed by it


def _server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    def read(p: Path) -> bytes:
        try:
            return Path(p).expanduser().read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read TLS file {p}: {exc.strerror}") from None
    client_ca = read(tls.client_ca) if tls.client_ca else None
    return grpc.ssl_server_credentials([(read(tls.key), read(tls.cert))], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def make_servicer(service: AgentService, device_info: Callable[[], pb.DeviceInfo], device_id: str, *,
                  upload_slots: int = 4, uploads_per_peer: int = 2, upload_idle_s: float = DEFAULT_UPLOAD_IDLE_S,
                  watch_streams: int = 2) -> AgentServicer:
    """The servicer with its admission limits: the direct server and the dial-out tunnel serve through the same one."""
    measure_slots = service.max_queue + 1
    admission = Admission({"upload": (upload_slots, uploads_per_peer), "measure": (measure_slots, measure_slots),
                           "watch": (watch_streams, 1)})
    return AgentServicer(service, device_info, device_id, admission, IdleWatch(upload_idle_s))


def make_server(service: AgentService, *, listen: str, device_info: Callable[[], pb.DeviceInfo], device_id: str,
                token: Optional[str] = None, tls: Optional[TlsFiles] = None, upload_slots: int = 4,
                uploads_per_peer: int = 2, upload_idle_s: float = DEFAULT_UPLOAD_IDLE_S, watch_streams: int = 2
                ) -> Tuple[grpc.Server, int]:
    """Build and start the server; returns it and the port actually bound (listen may use port 0).
    ValueError for a malformed address or limits, OSError (one line) when it cannot be bound.

    At most ``upload_slots`` uploads at once (``uploads_per_peer`` from one client host), one running plus
    ``service.max_queue`` waiting measurements, ``watch_streams`` health-watch or reflection streams; beyond that a
    call is refused with RESOURCE_EXHAUSTED at once."""
    check_listen(listen)
    servicer = make_servicer(service, device_info, device_id, upload_slots=upload_slots,
                             uploads_per_peer=uploads_per_peer, upload_idle_s=upload_idle_s,
                             watch_streams=watch_streams)
    admission = servicer.admission
    interceptors = [ThreadWaitInterceptor(admission)] + ([TokenAuthInterceptor(token)] if token else [])
    threads = admission.slots + QUICK_CALL_THREADS
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc"),
                         interceptors=interceptors, maximum_concurrent_rpcs=threads * 8,
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.so_reuseport", 0)])
    agent_pb2_grpc.add_AgentServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        port = server.add_secure_port(listen, _server_credentials(tls)) if tls else server.add_insecure_port(listen)
    except RuntimeError:  # grpc's "Failed to bind": the probe above passed, so something else took it meanwhile
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {listen}: address in use or not available here")
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port


def split_address(listen: str) -> Tuple[str, int]:
    """(host, port) of ``HOST:PORT``; ValueError saying what is wrong."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT with a port in 0-65535 (e.g. 127.0.0.1:50051), got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def check_listen(listen: str) -> Tuple[str, int]:
    """(host, port) when ``listen`` can be bound now; ValueError (malformed) or OSError (taken, unknown host) in one
    line otherwise. A plain socket is bound first: grpc's own failure is a RuntimeError and a C-core log line."""
    host, port = split_address(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {listen}: unknown host {host!r} ({exc.strerror})") from None
    if port == 0:
        return host, port
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does: TIME_WAIT is not "in use"
        try:
            probe.bind(address)
        except OSError as exc:
            why = ("address already in use; pick another --listen port" if exc.errno == errno.EADDRINUSE
                   else exc.strerror or str(exc))
            raise OSError(f"cannot listen on {listen}: {why}") from None
    return host, port


def stop_server(server: grpc.Server, service: AgentService, grace_s: float = 5.0) -> None:
    """Graceful stop: cancel the running measurement (its caller gets UNAVAILABLE saying the agent is shutting
    down), refuse new ones, give in-flight calls ``grace_s`` to answer, then close."""
    service.shutdown()
    server.stop(grace=grace_s).wait()


@contextlib.contextmanager
def serve(service: AgentService, **kwargs) -> Iterator[Tuple[grpc.Server, int]]:
    server, port = make_server(service, **kwargs)
    try:
        yield server, port
    finally:
        stop_server(server, service, grace_s=1.0)
