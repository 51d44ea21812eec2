"""Serving: a gRPC server for an AgentService, with token auth, TLS, health checking and reflection.

    with serve(service, listen="127.0.0.1:0", device_info=..., device_id=...) as (server, port): ...

Binds 127.0.0.1 unless told otherwise. The token check is an interceptor (constant-time compare); the standard
health service stays open so that load balancers and `grpc_health_probe` work without the token.
"""
from __future__ import annotations

import contextlib
import hmac
import logging
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fleetnas.agent.measure.service import AgentService
from fleetnas.agent.rpc.servicer import AgentServicer
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.agent.v1 import agent_pb2_grpc

log = logging.getLogger("fleetnas.agent")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Agent"].full_name
_OPEN_METHODS = ("/grpc.health.v1.Health/",)
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # uploads stream 1 MiB chunks; nothing else comes close


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Optional[Path] = None  # set: mutual TLS, clients must present a certificate signed by it


def _abort_handler(handler: grpc.RpcMethodHandler, method: str, message: str) -> grpc.RpcMethodHandler:
    def deny(request, context):
        log.info("%s from %s: UNAUTHENTICATED %s", method.rsplit("/", 1)[-1], context.peer(), message)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Requires `authorization: Bearer <token>` metadata on every call but the health service."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the agent token is empty: put a random secret in the token file")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_OPEN_METHODS):
            return handler
        given = dict(handler_call_details.invocation_metadata).get("authorization", "")
        if not given:
            return _abort_handler(handler, handler_call_details.method, "this agent requires a token: pass --token-file with the agent's token")
        if not hmac.compare_digest(given.encode(), self._expected):
            return _abort_handler(handler, handler_call_details.method, "wrong token for this agent: check --token-file against the agent's token")
        return handler


def read_token_file(path: Path) -> str:
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise ValueError(f"token file {path} is empty: put a random secret in it (e.g. openssl rand -hex 32)")
    return token


def _server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    def read(p: Path) -> bytes:
        try:
            return Path(p).expanduser().read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read TLS file {p}: {exc.strerror}") from None
    client_ca = read(tls.client_ca) if tls.client_ca else None
    return grpc.ssl_server_credentials([(read(tls.key), read(tls.cert))], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def make_server(service: AgentService, *, listen: str, device_info: Callable[[], pb.DeviceInfo], device_id: str,
                token: Optional[str] = None, tls: Optional[TlsFiles] = None,
                max_workers: int = 16) -> Tuple[grpc.Server, int]:
    """Build and start the server; returns it and the port actually bound (listen may use port 0)."""
    interceptors = [TokenAuthInterceptor(token)] if token else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
                         interceptors=interceptors,
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.so_reuseport", 0)])
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(service, device_info, device_id), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = (server.add_secure_port(listen, _server_credentials(tls)) if tls else server.add_insecure_port(listen))
    if port == 0:
        raise OSError(f"cannot listen on {listen}: address in use or not available here")
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port


@contextlib.contextmanager
def serve(service: AgentService, **kwargs) -> Iterator[Tuple[grpc.Server, int]]:
    server, port = make_server(service, **kwargs)
    try:
        yield server, port
    finally:
        server.stop(grace=1.0).wait()
