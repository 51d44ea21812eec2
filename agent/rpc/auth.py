"""Token auth for the agent's gRPC API: every call but the health service must carry
``authorization: Bearer <token>``, compared in constant time."""
from __future__ import annotations

import hmac
import logging
from pathlib import Path

import grpc

from fleetnas.agent.private_files import loose_permissions

log = logging.getLogger("fleetnas.agent")
_OPEN_METHODS = ("/grpc.health.v1.Health/",)


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
            return _abort_handler(handler, handler_call_details.method,
                                  "this agent requires a token: pass --token-file with the agent's token")
        if not hmac.compare_digest(given.encode(), self._expected):
            return _abort_handler(handler, handler_call_details.method,
                                  "wrong token for this agent: check --token-file against the agent's token")
        return handler


def read_token_file(path: Path) -> str:
    """The token in ``path``. A file other users can read is used, with one warning line: container secret mounts
    are often 0444 and refusing them would stop those agents, while a hand-made 0644 file deserves the hint."""
    try:
        token = Path(path).expanduser().read_text().strip()
        loose = loose_permissions(Path(path).expanduser())
    except OSError as exc:
        raise ValueError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise ValueError(f"token file {path} is empty: put a random secret in it (e.g. openssl rand -hex 32)")
    if loose:
        log.warning("token file %s is readable by other users (mode %s): chmod 600 %s", path, loose, path)
    return token
