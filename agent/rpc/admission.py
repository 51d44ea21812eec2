"""Keeping the board answerable under load: bounded call slots, an upload idle timeout, and thread-wait accounting.

- ``Admission``: at most ``total`` calls of a kind (uploads, measurements) at once, and at most ``per_peer`` from one
  client host; a call beyond that is refused at once with Busy (RESOURCE_EXHAUSTED), never parked on a thread. The
  server's thread pool is sized above the sum of the slots, so health checks and GetDeviceInfo always find a thread.
- ``IdleWatch``: cancels an upload stream that sent nothing for ``idle_s`` seconds (DEADLINE_EXCEEDED with a message),
  freeing its thread and slot. One watcher thread for all streams.
- ``ThreadWaitInterceptor``: notes when a call reached the server and how long it then waited for a pool thread;
  ``thread_wait_ms()`` gives the current call's figure to the servicer (logged with every call, and added to a
  measurement's queue wait).
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from typing import Callable, Dict, Iterator, Optional, Tuple

import grpc
from grpc._cython import cygrpc  # grpc's core binding: the only way to end a call from another thread with a status

from fleetnas.agent.errors import Busy

log = logging.getLogger("fleetnas.agent")
_local = threading.local()
DEFAULT_UPLOAD_IDLE_S = 30.0
DEFAULT_LIMITS = {"upload": (4, 2), "watch": (2, 1)}  # kind -> (total, per client host); "measure" from the queue


def peer_host(peer: str) -> str:
    """'ipv4:10.0.0.5:51234' -> '10.0.0.5'; 'ipv6:[::1]:5' -> '::1'; anything else unchanged."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer


class Admission:
    def __init__(self, limits: Dict[str, Tuple[int, int]]) -> None:
        """``limits``: kind -> (total, per peer host)."""
        for kind, (total, per_peer) in limits.items():
            if total < 1 or per_peer < 1:
                raise ValueError(f"{kind} call limits must be >= 1, got total={total}, per peer={per_peer}")
        self.limits = dict(limits)
        self._lock = threading.Lock()
        self._active: Dict[str, int] = collections.Counter()
        self._by_peer: Dict[Tuple[str, str], int] = collections.Counter()

    @property
    def slots(self) -> int:
        return sum(total for total, _ in self.limits.values())

    @contextlib.contextmanager
    def slot(self, kind: str, peer: str, what: str) -> Iterator[None]:
        total, per_peer = self.limits[kind]
        host = peer_host(peer)
        with self._lock:
            if self._active[kind] >= total:
                raise Busy(f"this agent already serves {total} {what}: retry later or use another board")
            if self._by_peer[(kind, host)] >= per_peer:
                raise Busy(f"{per_peer} {what} from {host} are already in progress: wait for one to finish")
            self._active[kind] += 1
            self._by_peer[(kind, host)] += 1
        try:
            yield
        finally:
            with self._lock:
                self._active[kind] -= 1
                self._by_peer[(kind, host)] -= 1
                if not self._by_peer[(kind, host)]:
                    del self._by_peer[(kind, host)]


class IdleWatch:
    """Cancels streams idle for longer than ``idle_s``; ``watch(cancel)`` returns a ``touch()`` and an ``end()``."""

    def __init__(self, idle_s: float, poll_s: float = 0.5) -> None:
        if not idle_s > 0:
            raise ValueError(f"the upload idle timeout must be > 0 s, got {idle_s}")
        self.idle_s = idle_s
        self._poll_s = min(poll_s, idle_s / 4)
        self._lock = threading.Lock()
        self._streams: Dict[int, list] = {}
        self._ids = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def watch(self, cancel: Callable[[str], None]) -> Tuple[Callable[[], None], Callable[[], None]]:
        key = next(self._ids)
        entry = [time.monotonic(), cancel]
        with self._lock:
            self._streams[key] = entry
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="upload-idle-watch", daemon=True)
                self._thread.start()

        def touch() -> None:
            entry[0] = time.monotonic()

        def end() -> None:
            with self._lock:
                self._streams.pop(key, None)
        return touch, end

    def _run(self) -> None:
        while True:
            time.sleep(self._poll_s)
            now = time.monotonic()
            with self._lock:
                idle = [(k, e) for k, e in self._streams.items() if now - e[0] > self.idle_s]
                for k, _ in idle:
                    del self._streams[k]
            for _, (_, cancel) in idle:
                try:
                    cancel(f"upload idle for more than {self.idle_s:g} s: the agent closed it; "
                           "send the chunks without pauses")
                except Exception as exc:  # noqa: BLE001 - a stream that already ended cannot be cancelled
                    log.debug("cancelling an idle upload failed: %s", exc)


def cancel_with_status(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """End a call from another thread with ``code`` and ``details``; plain cancellation (CANCELLED) where this grpc
    build offers no way to say why."""
    try:
        context._rpc_event.call.cancel(getattr(cygrpc.StatusCode, code.name.lower()), details)
    except (AttributeError, TypeError):
        context.cancel()


def thread_wait_ms() -> float:
    """How long the current call waited for a thread of the server's pool (0 outside a call)."""
    return getattr(_local, "thread_wait_ms", 0.0)


# Long-lived streams served by grpc's own servicers: bounded like uploads, so watchers cannot hold every thread.
LONG_STREAMS = {"/grpc.health.v1.Health/Watch": "watch",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": "watch"}


class ThreadWaitInterceptor(grpc.ServerInterceptor):
    """Runs where grpc picks the handler (before the call waits for a pool thread), so it sees the arrival time.
    Also holds an ``Admission`` slot of kind "watch" for the long-lived streams in LONG_STREAMS."""

    def __init__(self, admission: Optional[Admission] = None) -> None:
        self.admission = admission

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        arrived = time.monotonic()
        kind = LONG_STREAMS.get(handler_call_details.method)
        admission = self.admission if kind and self.admission and kind in self.admission.limits else None

        @contextlib.contextmanager
        def admitted(context):
            _local.thread_wait_ms = (time.monotonic() - arrived) * 1e3
            try:
                with contextlib.ExitStack() as stack:
                    if admission is not None:
                        try:
                            stack.enter_context(admission.slot(kind, context.peer(), "long-lived streams"))
                        except Busy as exc:
                            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
                    yield
            finally:
                _local.thread_wait_ms = 0.0

        def unary(behavior):
            def timed(request, context):
                with admitted(context):
                    return behavior(request, context)
            return timed

        def streaming(behavior):
            def timed(request, context):
                with admitted(context):
                    yield from behavior(request, context)
            return timed

        kw = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kw)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kw)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kw)
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kw)
