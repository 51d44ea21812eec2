"""The host's end of a dial-out stream: calls of the Agent service carried over a stream the agent opened.

``AgentStream`` is one connected agent's stream (fed by fleetnas.host.fleet.hub); ``TunnelChannel`` is a
``grpc.Channel`` whose calls travel over the stream of one named device, so ``AgentClient(channel=...)`` and everything
above it (dispatcher, suspect and re-dispatch rules, upload-once, request ids) work unchanged. A device with no stream
(not dialled in yet, or its connection dropped) answers UNAVAILABLE at once, which the dispatcher treats as any
unreachable agent: suspect, work re-dispatched, tried again with backoff.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from typing import Callable, Dict, Iterator, Optional

import grpc

from fleetnas.agent.v1 import hub_pb2

MISSED_PINGS = 3     # a stream silent for this many ping intervals is dead (the agent uses the same rule)
_STATUS = {code.value[0]: code for code in grpc.StatusCode}


class TunnelRpcError(grpc.RpcError):
    """A tunnelled call's failure, shaped as grpc's own (``code()``, ``details()``) for the client's error table."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: Optional[bytes] = None
        self.code = grpc.StatusCode.UNKNOWN
        self.details = ""


class AgentStream:
    """One connected agent: frames to it go through a small bounded outbox (a large upload waits for the network
    rather than filling memory), answers come back through ``on_frame``."""

    def __init__(self, device_name: str, ping_s: float, peer: str = "") -> None:
        self.device_name, self.ping_s, self.peer = device_name, ping_s, peer
        self.connected_unix_s = time.time()
        self.heard = time.monotonic()
        self.closed = threading.Event()
        self.why_closed = ""
        self._outbox: "queue.Queue[hub_pb2.TunnelFrame]" = queue.Queue(maxsize=16)
        self._calls: Dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -------------------------------------------------------------- the hub's side
    def frames(self) -> Iterator[hub_pb2.TunnelFrame]:
        """What the hub sends: queued frames, a ping when idle; ends when closed or the agent falls silent."""
        while not self.closed.is_set():
            try:
                yield self._outbox.get(timeout=self.ping_s)
            except queue.Empty:
                if time.monotonic() - self.heard > MISSED_PINGS * self.ping_s:
                    self.close(f"no word from the agent for {MISSED_PINGS * self.ping_s:g} s")
                    return
                yield hub_pb2.TunnelFrame(ping=True)

    def on_frame(self, frame: hub_pb2.TunnelFrame) -> None:
        self.heard = time.monotonic()
        kind = frame.WhichOneof("kind")
        if kind not in ("response", "status"):
            return   # pings; anything else from the agent is ignored, never acted on
        with self._lock:
            pending = self._calls.get(frame.call_id)
        if pending is None:
            return
        if kind == "response":
            pending.response = frame.response
        else:
            pending.code = _STATUS.get(frame.status.code, grpc.StatusCode.UNKNOWN)
            pending.details = frame.status.details
            pending.done.set()

    def close(self, why: str) -> None:
        """Every call still waiting fails UNAVAILABLE: the dispatcher marks the device suspect and re-dispatches."""
        with self._lock:
            if not self.closed.is_set():
                self.why_closed = why
            self.closed.set()
            calls, self._calls = list(self._calls.values()), {}
        for pending in calls:
            pending.code, pending.details = grpc.StatusCode.UNAVAILABLE, self._lost()
            pending.done.set()

    def _lost(self) -> str:
        # worded from "the agent ": the client passes such UNAVAILABLE details on as they are
        return f"the agent of dial-in device {self.device_name} lost its connection ({self.why_closed})"

    # -------------------------------------------------------------- the callers' side
    def _send(self, frame: hub_pb2.TunnelFrame, deadline: float) -> None:
        while True:
            if self.closed.is_set():
                raise TunnelRpcError(grpc.StatusCode.UNAVAILABLE, self._lost())
            left = deadline - time.monotonic()
            if left <= 0:
                raise TunnelRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed while sending")
            try:
                self._outbox.put(frame, timeout=min(0.5, left))
                return
            except queue.Full:
                continue

    def call(self, method: str, requests: Iterator[bytes], timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        call_id, pending = next(self._ids), _Pending()
        with self._lock:
            if self.closed.is_set():
                raise TunnelRpcError(grpc.StatusCode.UNAVAILABLE, self._lost())
            self._calls[call_id] = pending
        try:
            self._send(hub_pb2.TunnelFrame(call_id=call_id, method=method, timeout_s=timeout_s), deadline)
            for request in requests:
                if pending.done.is_set():   # the agent answered early (a refusal): stop sending
                    break
                self._send(hub_pb2.TunnelFrame(call_id=call_id, request=request), deadline)
            if not pending.done.is_set():
                self._send(hub_pb2.TunnelFrame(call_id=call_id, requests_done=True), deadline)
            if not pending.done.wait(max(0.0, deadline - time.monotonic())):
                raise TunnelRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        except TunnelRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                self._cancel(call_id)
            raise
        finally:
            with self._lock:
                self._calls.pop(call_id, None)
        if pending.code != grpc.StatusCode.OK:
            raise TunnelRpcError(pending.code, pending.details)
        if pending.response is None:
            raise TunnelRpcError(grpc.StatusCode.INTERNAL, "the agent ended the call without an answer")
        return pending.response

    def _cancel(self, call_id: int) -> None:
        try:
            self._outbox.put_nowait(hub_pb2.TunnelFrame(call_id=call_id, cancel=True))
        except queue.Full:
            pass   # the agent's own deadline ends the call anyway


class _MultiCallable:
    def __init__(self, channel: "TunnelChannel", method: str, serialize: Optional[Callable],
                 deserialize: Optional[Callable], streaming_requests: bool) -> None:
        self._channel, self._method = channel, method
        self._serialize = serialize or (lambda m: m)
        self._deserialize = deserialize or (lambda b: b)
        self._streaming = streaming_requests

    def __call__(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None,
                 compression=None):
        # metadata (the bearer token of a direct connection) is not sent: the stream itself is authenticated
        requests = request if self._streaming else iter((request,))
        stream = self._channel.stream()
        payloads = (self._serialize(r) for r in requests)
        return self._deserialize(stream.call(self._method, payloads, timeout if timeout else 30.0))


class _Unimplemented:
    def __init__(self, method: str) -> None:
        self._method = method

    def __call__(self, *args, **kwargs):
        raise TunnelRpcError(grpc.StatusCode.UNIMPLEMENTED,
                             f"{self._method}: the dial-in tunnel carries unary and client-streaming calls only")


class TunnelChannel(grpc.Channel):
    """A grpc.Channel to the device ``device_name`` through ``lookup(device_name)``'s current stream."""

    def __init__(self, device_name: str, lookup: Callable[[str], Optional[AgentStream]]) -> None:
        self.device_name = device_name
        self._lookup = lookup
        self._watchers: Dict[Callable, threading.Event] = {}

    def stream(self) -> AgentStream:
        stream = self._lookup(self.device_name)
        if stream is None or stream.closed.is_set():
            raise TunnelRpcError(grpc.StatusCode.UNAVAILABLE,
                                 f"the agent of dial-in device {self.device_name} is not connected (is "
                                 f"`fleetnas-agent connect` running there, with this host's address?)")
        return stream

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, **_):
        return _MultiCallable(self, method, request_serializer, response_deserializer, streaming_requests=False)

    def stream_unary(self, method, request_serializer=None, response_deserializer=None, **_):
        return _MultiCallable(self, method, request_serializer, response_deserializer, streaming_requests=True)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None, **_):
        return _Unimplemented(method)   # stubs make every method's callable up front; only a call is refused

    def stream_stream(self, method, request_serializer=None, response_deserializer=None, **_):
        return _Unimplemented(method)

    def subscribe(self, callback, try_to_connect=False) -> None:
        """READY once the device has dialled in (what grpc.channel_ready_future waits for)."""
        stop = threading.Event()
        self._watchers[callback] = stop

        def watch():
            while not stop.is_set():
                current = self._lookup(self.device_name)
                if current is not None and not current.closed.is_set():
                    callback(grpc.ChannelConnectivity.READY)
                    return
                stop.wait(0.1)
        callback(grpc.ChannelConnectivity.CONNECTING)
        threading.Thread(target=watch, daemon=True, name=f"dial-in-ready-{self.device_name}").start()

    def unsubscribe(self, callback) -> None:
        stop = self._watchers.pop(callback, None)
        if stop is not None:
            stop.set()

    def close(self) -> None:
        for stop in self._watchers.values():
            stop.set()
        self._watchers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
