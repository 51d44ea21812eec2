"""Serving the Agent service's calls that arrive inside a dial-out stream (fleetnas.agent.v1.Hub).

A tunnelled call is handed to the SAME ``AgentServicer`` methods the direct server uses, with a ``TunnelContext``
in place of grpc's: the same admission slots, idempotency, upload checks and error table apply. Only the methods of
the Agent service and the health check are served; any other method name is refused (UNIMPLEMENTED). Nothing the
hub sends is ever executed: request bytes are parsed into the Agent service's messages and nothing else.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, NamedTuple, Optional

import grpc
from grpc_health.v1 import health_pb2

from fleetnas.agent.rpc.servicer import AgentServicer
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.agent.v1 import hub_pb2

log = logging.getLogger("fleetnas.agent")
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_END = object()   # end of a call's request messages


class Aborted(Exception):
    """What ``TunnelContext.abort`` raises, as grpc's context does: the call ends with this status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class CallCancelled(grpc.RpcError):
    """Raised by a cancelled call's request iterator, as grpc's is (the servicer catches grpc.RpcError)."""


class TunnelContext:
    """The part of grpc.ServicerContext the servicer uses, for one tunnelled call."""

    def __init__(self, peer: str, timeout_s: float) -> None:
        self._peer = peer
        self._deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        self.cancelled = threading.Event()

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> Optional[float]:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def abort(self, code: grpc.StatusCode, details: str):
        raise Aborted(code, details)

    def cancel(self) -> None:
        self.cancelled.set()

    def is_active(self) -> bool:
        return not self.cancelled.is_set()

    def invocation_metadata(self):
        return ()


class Method(NamedTuple):
    handler: Callable
    parse: Callable[[bytes], object]
    client_streaming: bool


def agent_methods(servicer: AgentServicer) -> Dict[str, Method]:
    """The Agent service's methods, from its descriptor: a method added to the contract is served here too."""
    service = pb.DESCRIPTOR.services_by_name["Agent"]
    return {f"/{service.full_name}/{m.name}": Method(getattr(servicer, m.name),
                                                    getattr(pb, m.input_type.name).FromString, m.client_streaming)
            for m in service.methods}


class _Call:
    def __init__(self, call_id: int, method: Method, context: TunnelContext) -> None:
        self.call_id, self.method, self.context = call_id, method, context
        self.requests: "queue.Queue" = queue.Queue(maxsize=8)   # the hub waits on a full one: flow control

    def request_iterator(self) -> Iterator[object]:
        while True:
            try:
                item = self.requests.get(timeout=0.5)
            except queue.Empty:
                if self.context.cancelled.is_set():
                    raise CallCancelled() from None
                continue
            if item is _END:
                return
            yield self.method.parse(item)


class TunnelServer:
    """Runs the calls of one or more successive streams on a pool shared across reconnects; ``send`` puts a frame
    on the current stream."""

    def __init__(self, servicer: AgentServicer, *, workers: int) -> None:
        self.servicer = servicer
        self.methods = agent_methods(servicer)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tunnel")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def session(self, send: Callable[[hub_pb2.TunnelFrame], None], peer: str) -> "TunnelSession":
        return TunnelSession(self, send, peer)


class TunnelSession:
    """The calls of one stream: frames from the hub in (``on_frame``), answers out through ``send``."""

    def __init__(self, server: TunnelServer, send: Callable[[hub_pb2.TunnelFrame], None], peer: str) -> None:
        self.server, self.send, self.peer = server, send, peer
        self.calls: Dict[int, _Call] = {}
        self.lock = threading.Lock()

    def on_frame(self, frame: hub_pb2.TunnelFrame) -> None:
        kind = frame.WhichOneof("kind")
        if kind == "method":
            self._start(frame.call_id, frame.method, frame.timeout_s)
            return
        with self.lock:
            call = self.calls.get(frame.call_id)
        if call is None:
            return   # a call that already ended (or never started): nothing to feed
        if kind == "request":
            self._feed(call, frame.request)
        elif kind == "requests_done":
            self._feed(call, _END)
        elif kind == "cancel":
            call.context.cancel()

    def _feed(self, call: _Call, item) -> None:
        while not call.context.cancelled.is_set():
            try:
                call.requests.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """The stream ended: every call still running is cancelled (a measurement runs on and is remembered by its
        request id, so the host's retry after a reconnect gets it without measuring again)."""
        with self.lock:
            calls, self.calls = list(self.calls.values()), {}
        for call in calls:
            call.context.cancel()

    def _start(self, call_id: int, name: str, timeout_s: float) -> None:
        if name == HEALTH_CHECK:
            self._finish(call_id, grpc.StatusCode.OK, "", self._health())
            return
        method = self.server.methods.get(name)
        if method is None:
            log.warning("tunnelled call of unknown method %r refused", name[:100])
            self._finish(call_id, grpc.StatusCode.UNIMPLEMENTED, f"this agent does not serve {name[:100]!r}")
            return
        call = _Call(call_id, method, TunnelContext(self.peer, timeout_s))
        with self.lock:
            self.calls[call_id] = call
        self.server.pool.submit(self._run, call)

    def _health(self) -> bytes:
        # as the direct server's health service: serving for as long as the agent runs (the stream is up)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING).SerializeToString()

    def _run(self, call: _Call) -> None:
        code, details, response = grpc.StatusCode.OK, "", None
        try:
            if call.method.client_streaming:
                answer = call.method.handler(call.request_iterator(), call.context)
            else:
                first = next(call.request_iterator(), None)
                if first is None:
                    raise Aborted(grpc.StatusCode.INVALID_ARGUMENT, "the call carried no request message")
                answer = call.method.handler(first, call.context)
            response = answer.SerializeToString()
        except Aborted as exc:
            code, details = exc.code, exc.details
        except CallCancelled:
            code, details = grpc.StatusCode.CANCELLED, "cancelled by the caller"
        except Exception as exc:   # the servicer maps every error it knows; this is a bug in the tunnel itself
            log.error("tunnelled call failed:\n%s", traceback.format_exc())
            code, details = grpc.StatusCode.INTERNAL, f"agent bug in the tunnel: {type(exc).__name__}: {exc}"
        finally:
            with self.lock:
                self.calls.pop(call.call_id, None)
        if not call.context.cancelled.is_set():
            self._finish(call.call_id, code, details, response)

    def _finish(self, call_id: int, code: grpc.StatusCode, details: str, response: Optional[bytes] = None) -> None:
        if response is not None:
            self.send(hub_pb2.TunnelFrame(call_id=call_id, response=response))
        self.send(hub_pb2.TunnelFrame(call_id=call_id, status=hub_pb2.CallStatus(code=code.value[0],
                                                                                 details=details)))
