"""Dial-out: keep one authenticated stream open to the host's hub and serve the calls it carries.

For boards that cannot be reached (NAT, carrier-grade NAT, phones): the agent opens the connection, the host's calls
come back inside it (fleetnas.agent.v1.Hub, served by fleetnas.agent.rpc.tunnel). Each side proves it knows the
device's token over the other's fresh nonce, so the token itself never crosses the wire, a recorded stream cannot be
replayed, and an agent talks only to a hub that knows its token. A dropped or silent stream (no frame for three ping
intervals) is torn down and opened again, with exponential backoff and jitter so a fleet does not reconnect in step.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import random
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

import grpc

from fleetnas.agent.rpc.server import MAX_MESSAGE_BYTES
from fleetnas.agent.rpc.tunnel import TunnelServer
from fleetnas.agent.v1 import hub_pb2, hub_pb2_grpc

log = logging.getLogger("fleetnas.agent")
DEFAULT_PING_S = 5.0
MISSED_PINGS = 3          # a stream silent for this many ping intervals is dead
DEFAULT_BACKOFF_S = (0.5, 30.0)


def token_proof(token: Optional[str], role: str, nonce: bytes, device_name: str) -> bytes:
    """HMAC-SHA256(token, "fleetnas-hub-v1" NUL role NUL nonce NUL device_name); empty without a token. The hub
    computes the same (role "agent" over its challenge, "hub" over the agent's nonce)."""
    if not token:
        return b""
    message = b"\0".join((b"fleetnas-hub-v1", role.encode(), nonce, device_name.encode()))
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


@dataclass(frozen=True)
class DialTls:
    ca: Optional[Path] = None          # verifies the hub's certificate (None: system roots)
    cert: Optional[Path] = None        # with key: a client certificate (mutual TLS)
    key: Optional[Path] = None
    server_name: Optional[str] = None  # the name in the hub's certificate, when it differs from HOST


@dataclass(frozen=True)
class Identity:
    device_name: str
    device_id: str
    fingerprint_sha256: Callable[[], str]   # waits for the fingerprint collection on first use
    agent_version: str


@dataclass(frozen=True)
class Outcome:
    established: bool   # the handshake completed: the next attempt starts from the shortest backoff
    why: str


class HubRefused(Exception):
    pass


def _read(path: Optional[Path], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from None


def make_channel(target: str, tls: Optional[DialTls]) -> grpc.Channel:
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
               # each attempt gets a fresh channel and our own backoff: grpc's (up to 2 min) would only add to it
               ("grpc.initial_reconnect_backoff_ms", 500), ("grpc.max_reconnect_backoff_ms", 2000)]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    creds = grpc.ssl_channel_credentials(_read(tls.ca, "--tls-ca"), _read(tls.key, "--tls-key"),
                                         _read(tls.cert, "--tls-cert"))
    return grpc.secure_channel(target, creds, options=options)


class DialOut:
    """``run(stop)`` connects, serves, and reconnects until ``stop`` is set."""

    def __init__(self, target: str, server: TunnelServer, identity: Identity, *, token: Optional[str],
                 tls: Optional[DialTls] = None, backoff_s: Tuple[float, float] = DEFAULT_BACKOFF_S,
                 connect_timeout_s: float = 10.0) -> None:
        self.target, self.server, self.identity = target, server, identity
        self.token, self.tls = token, tls
        self.backoff_s, self.connect_timeout_s = backoff_s, connect_timeout_s
        self.connections = 0    # streams that completed the handshake (for logs and tests)

    def run(self, stop: threading.Event) -> None:
        delay = self.backoff_s[0]
        while not stop.is_set():
            outcome = self._attempt(stop)
            if stop.is_set():
                return
            if outcome.established:
                delay = self.backoff_s[0]
            wait_s = delay * random.uniform(0.5, 1.5)
            log.warning("hub %s: %s; trying again in %.1f s", self.target, outcome.why, wait_s)
            stop.wait(wait_s)
            delay = min(self.backoff_s[1], delay * 2)

    def _attempt(self, stop: threading.Event) -> Outcome:
        channel = make_channel(self.target, self.tls)
        try:
            try:
                grpc.channel_ready_future(channel).result(timeout=self.connect_timeout_s)
            except grpc.FutureTimeoutError:
                return Outcome(False, f"not reachable within {self.connect_timeout_s:g} s")
            return self._stream(channel, stop)
        finally:
            channel.close()

    def _stream(self, channel: grpc.Channel, stop: threading.Event) -> Outcome:
        outbox: "queue.Queue" = queue.Queue(maxsize=64)
        closed = threading.Event()

        def frames():
            while not closed.is_set():
                try:
                    frame = outbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                yield frame

        def send(frame: hub_pb2.TunnelFrame) -> None:
            while not closed.is_set():
                try:
                    outbox.put(frame, timeout=0.5)
                    return
                except queue.Full:
                    continue

        call = hub_pb2_grpc.HubStub(channel).Connect(frames())
        session = self.server.session(send, peer=f"hub {self.target}")
        state = {"heard": time.monotonic(), "ping_s": DEFAULT_PING_S, "established": False}
        watchdog = threading.Thread(target=self._watch, args=(call, state, send, closed, stop), daemon=True,
                                    name="dialout-watch")
        watchdog.start()
        try:
            for frame in call:
                state["heard"] = time.monotonic()
                kind = frame.WhichOneof("kind")
                if kind == "challenge":
                    send(self._hello(frame.challenge.nonce, state))
                elif kind == "welcome":
                    self._check_welcome(frame.welcome, state)
                    state["established"] = True
                    state["ping_s"] = frame.welcome.ping_interval_s or DEFAULT_PING_S
                    self.connections += 1
                    log.info("connected to hub %s as %s", self.target, self.identity.device_name)
                elif kind != "ping" and state["established"]:
                    session.on_frame(frame)
            return Outcome(state["established"], "the hub closed the stream")
        except HubRefused as exc:
            return Outcome(False, str(exc))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            details = (exc.details() if hasattr(exc, "details") else "") or str(exc)
            if code == grpc.StatusCode.CANCELLED and closed.is_set():
                details = "stream silent or stopped"
            return Outcome(state["established"], f"stream ended ({code.name}: {details})")
        finally:
            closed.set()
            session.close()
            call.cancel()
            watchdog.join(timeout=2)

    def _hello(self, challenge: bytes, state: dict) -> hub_pb2.TunnelFrame:
        state["nonce"] = secrets.token_bytes(32)
        ident = self.identity
        return hub_pb2.TunnelFrame(hello=hub_pb2.Hello(
            device_name=ident.device_name, device_id=ident.device_id, fingerprint_sha256=ident.fingerprint_sha256(),
            agent_version=ident.agent_version, nonce=state["nonce"],
            token_proof=token_proof(self.token, "agent", challenge, ident.device_name)))

    def _check_welcome(self, welcome: hub_pb2.Welcome, state: dict) -> None:
        if "nonce" not in state:
            raise HubRefused("the hub sent a welcome before its challenge: not a fleetnas hub")
        if self.token:
            expected = token_proof(self.token, "hub", state["nonce"], self.identity.device_name)
            if not hmac.compare_digest(expected, welcome.token_proof):
                raise HubRefused("the hub could not prove it knows this device's token: check the hub address "
                                 "and that its devices file names this device's token_file")

    def _watch(self, call, state: dict, send, closed: threading.Event, stop: threading.Event) -> None:
        """Pings the hub, and tears the stream down when the hub falls silent or the agent stops."""
        last_ping = time.monotonic()
        while not closed.wait(0.25):
            now = time.monotonic()
            if stop.is_set() or now - state["heard"] > MISSED_PINGS * state["ping_s"]:
                closed.set()
                call.cancel()
                return
            if state["established"] and now - last_ping >= state["ping_s"]:
                send(hub_pb2.TunnelFrame(ping=True))
                last_ping = now
