"""The hub: where dial-in agents connect (``fleetnas hub|search|devices check --listen ADDR``).

Each stream is bound to exactly one ``address = "dial-in"`` device of the devices file, by proof, never by claim:
the agent proves it holds that device's own token (an HMAC over the hub's fresh challenge, see
fleetnas.agent.rpc.dialout.token_proof) and, when the hub verifies client certificates, presents a certificate
issued for that device's name; a devices file entry with a ``fingerprint`` must match the agent's. A second stream
claiming a device that is connected is refused, so one agent cannot take over another's place. The hub only ever
sends calls of the Agent service and reads their answers: nothing an agent sends is run here.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence

import grpc

from fleetnas.agent.v1 import hub_pb2, hub_pb2_grpc
from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.tunnel import AgentStream

if TYPE_CHECKING:   # devices.py reaches this module through Device.client(): type-only, no cycle
    from fleetnas.host.fleet.devices import Device

log = logging.getLogger("fleetnas.host.fleet")
HANDSHAKE_S = 15.0
DEFAULT_PING_S = 5.0
MAX_MESSAGE_BYTES = 8 << 20


def token_proof(token: Optional[str], role: str, nonce: bytes, device_name: str) -> bytes:
    """The agent's proof, computed as it does (fleetnas.agent.rpc.dialout.token_proof): the wire's definition."""
    if not token:
        return b""
    message = b"\0".join((b"fleetnas-hub-v1", role.encode(), nonce, device_name.encode()))
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


@dataclass(frozen=True)
class HubTls:
    cert: Path
    key: Path
    client_ca: Optional[Path] = None   # set: agents must present a certificate signed by it, issued for their name


@dataclass(frozen=True)
class Connection:
    device_name: str
    fingerprint_sha256: str
    agent_version: str
    peer: str
    connected_unix_s: float


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def _certificate_names(context: grpc.ServicerContext) -> List[str]:
    auth = context.auth_context() or {}
    names = list(auth.get("x509_common_name", ())) + list(auth.get("x509_subject_alternative_name", ()))
    return [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]


class Hub:
    """Accepts dial-in agents for ``devices`` (the dial-in entries of a devices file)."""

    def __init__(self, devices: Sequence["Device"], *, tls: Optional[HubTls] = None, ping_s: float = DEFAULT_PING_S,
                 on_change: Optional[Callable[[str, Optional[Connection]], None]] = None) -> None:
        self.devices: Dict[str, "Device"] = {d.name: d for d in devices}
        self.tls, self.ping_s = tls, ping_s
        self.verifies_certificates = bool(tls and tls.client_ca)
        unproven = [d.name for d in devices if d.token_file is None and not self.verifies_certificates]
        if unproven:
            raise UsageError(f"dial-in device(s) {', '.join(unproven)} have no token_file: give each its own "
                             f"token_file, or make the hub verify client certificates (--listen-tls-client-ca)")
        self.on_change = on_change
        self._streams: Dict[str, AgentStream] = {}
        self._info: Dict[str, Connection] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: Optional[grpc.Server] = None
        self.port = 0

    # -------------------------------------------------------------- lifecycle
    def start(self, listen: str) -> int:
        workers = 2 * len(self.devices) + 4   # a stream holds one thread, its reader one more; refusals are quick
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub"),
                             maximum_concurrent_rpcs=workers,
                             options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                      ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                      ("grpc.so_reuseport", 0)])
        hub_pb2_grpc.add_HubServicer_to_server(_HubServicer(self), server)
        try:
            if self.tls is not None:
                client_ca = _read(self.tls.client_ca, "--listen-tls-client-ca") if self.tls.client_ca else None
                creds = grpc.ssl_server_credentials(
                    [(_read(self.tls.key, "--listen-tls-key"), _read(self.tls.cert, "--listen-tls-cert"))],
                    root_certificates=client_ca, require_client_auth=client_ca is not None)
                port = server.add_secure_port(listen, creds)
            else:
                port = server.add_insecure_port(listen)
        except RuntimeError:
            port = 0
        if port == 0:
            raise UsageError(f"cannot listen on {listen}: address in use or not available here; pick another --listen")
        server.start()
        self._server, self.port = server, port
        return port

    def stop(self) -> None:
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close("the hub is stopping")
        if self._server is not None:
            self._server.stop(grace=1.0).wait()
            self._server = None

    def __enter__(self) -> "Hub":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- lookups
    def stream(self, device_name: str) -> Optional[AgentStream]:
        with self._lock:
            return self._streams.get(device_name)

    def connections(self) -> Dict[str, Connection]:
        with self._lock:
            return dict(self._info)

    def wait_for(self, names: Iterable[str], timeout_s: float) -> List[str]:
        """Wait until every device in ``names`` is connected or ``timeout_s`` passed; the ones still missing."""
        wanted = set(names)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                missing = sorted(wanted - set(self._streams))
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self._changed.wait(min(left, 0.5))

    # -------------------------------------------------------------- streams
    def authenticate(self, hello: hub_pb2.Hello, challenge: bytes, context: grpc.ServicerContext) -> "Device":
        name = hello.device_name
        device = self.devices.get(name)
        if device is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED,
                          f"no dial-in device named {name[:64]!r} here: add it to the host's devices.toml with "
                          f'address = "dial-in", or start the agent with --name set to its entry')
        if device.token_file is not None:
            expected = token_proof(device.token(), "agent", challenge, name)
            if not hmac.compare_digest(expected, hello.token_proof):
                raise Refused(grpc.StatusCode.UNAUTHENTICATED,
                              f"wrong token for device {name}: use the file its devices.toml entry names as token_file")
        if self.verifies_certificates and name not in _certificate_names(context):
            raise Refused(grpc.StatusCode.PERMISSION_DENIED,
                          f"the client certificate is not issued for device {name}: its common name or a subject "
                          f"alternative name must be {name!r}")
        if device.fingerprint and not hello.fingerprint_sha256.startswith(device.fingerprint):
            raise Refused(grpc.StatusCode.PERMISSION_DENIED,
                          f"device {name} dialled in with fingerprint {hello.fingerprint_sha256[:16]}, its "
                          f"devices.toml entry expects {device.fingerprint[:16]}: another board, or update the entry")
        return device

    def claim(self, stream: AgentStream, hello: hub_pb2.Hello) -> None:
        with self._changed:
            current = self._streams.get(stream.device_name)
            if current is not None and not current.closed.is_set():
                raise Refused(grpc.StatusCode.ALREADY_EXISTS,
                              f"device {stream.device_name} is already connected (from {current.peer}); a second "
                              f"stream for it is refused until that one ends")
            self._streams[stream.device_name] = stream
            info = Connection(stream.device_name, hello.fingerprint_sha256, hello.agent_version, stream.peer,
                              stream.connected_unix_s)
            self._info[stream.device_name] = info
            self._changed.notify_all()
        self._notify(stream.device_name, info)

    def release(self, stream: AgentStream) -> None:
        with self._changed:
            if self._streams.get(stream.device_name) is not stream:
                return
            del self._streams[stream.device_name]
            self._info.pop(stream.device_name, None)
            self._changed.notify_all()
        self._notify(stream.device_name, None)

    def _notify(self, name: str, info: Optional[Connection]) -> None:
        if self.on_change is not None:
            try:
                self.on_change(name, info)
            except Exception:   # a display or bookkeeping hook must never take a stream down
                log.exception("hub change hook failed")


class _HubServicer(hub_pb2_grpc.HubServicer):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def Connect(self, request_iterator, context):
        challenge = secrets.token_bytes(32)
        yield hub_pb2.TunnelFrame(challenge=hub_pb2.Challenge(nonce=challenge))
        timer = threading.Timer(HANDSHAKE_S, context.cancel)   # a silent caller does not hold a thread
        timer.start()
        try:
            first = next(request_iterator, None)
        except grpc.RpcError:
            return
        finally:
            timer.cancel()
        if first is None or first.WhichOneof("kind") != "hello":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first frame must be a hello")
        hello = first.hello
        stream = AgentStream(hello.device_name, self.hub.ping_s, peer=context.peer())
        try:
            device = self.hub.authenticate(hello, challenge, context)
            self.hub.claim(stream, hello)
        except Refused as exc:
            log.warning("dial-in from %s refused: %s", context.peer(), exc)
            context.abort(exc.code, str(exc))
        log.info("%s dialled in from %s", device.name, context.peer())
        reader = threading.Thread(target=self._read, args=(request_iterator, stream), daemon=True,
                                  name=f"hub-read-{device.name}")
        reader.start()
        try:
            yield hub_pb2.TunnelFrame(welcome=hub_pb2.Welcome(
                token_proof=token_proof(device.token(), "hub", hello.nonce, device.name) if device.token_file else b"",
                ping_interval_s=self.hub.ping_s))
            yield from stream.frames()
        finally:
            stream.close(stream.why_closed or "the stream ended")
            self.hub.release(stream)
            log.info("%s disconnected: %s", device.name, stream.why_closed)
        if stream.why_closed.startswith("no word"):
            context.cancel()

    @staticmethod
    def _read(request_iterator, stream: AgentStream) -> None:
        try:
            for frame in request_iterator:
                stream.on_frame(frame)
            stream.close("the agent closed its stream")
        except grpc.RpcError:
            stream.close("the agent's stream broke")
        except Exception as exc:   # a malformed frame: drop the stream, keep the hub
            stream.close(f"unreadable frame from the agent ({type(exc).__name__})")
