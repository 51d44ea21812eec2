"""The host's thin client for one agent: with the dial-in hub and tunnel, the only modules on the host that import grpc.

Every call has a deadline. A gRPC error status comes back as the ``AgentCallError`` subclass that mirrors the agent's
error table (``AgentUnreachable``, ``ModelNotFound``, ``AgentBusy``, ``AgentAuthError``, ``AgentRejected``,
``RuntimeMissing``), with the agent's own message, so callers catch types and never see grpc.

``AgentClient`` speaks in the records of fleetnas.host.fleet.contract. ``WireClient`` underneath sends and returns the
contract's messages themselves; only ``AgentClient`` and tests of the agent's wire protocol use it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple, Type

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.agent.v1 import agent_pb2_grpc
from fleetnas.host.errors import (AgentAuthError, AgentBusy, AgentCallError, AgentRejected, AgentUnreachable,
                                  ModelNotFound, RuntimeMissing, UsageError)
from fleetnas.host.export.registry import format_of_file
from fleetnas.host.fleet.contract import (DeviceInfo, MeasureResult, ModelListing, RuntimeConfig, UploadResult,
                                          format_to_pb)

CHUNK_BYTES = 1 << 20
# The agent's error table (fleetnas.agent.rpc.servicer), read backwards; anything else stays an AgentCallError.
ERROR_TYPES = {
    grpc.StatusCode.UNAVAILABLE: AgentUnreachable,
    grpc.StatusCode.DEADLINE_EXCEEDED: AgentUnreachable,
    grpc.StatusCode.CANCELLED: AgentUnreachable,
    grpc.StatusCode.NOT_FOUND: ModelNotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: AgentBusy,
    grpc.StatusCode.UNAUTHENTICATED: AgentAuthError,
    grpc.StatusCode.PERMISSION_DENIED: AgentAuthError,
    grpc.StatusCode.INVALID_ARGUMENT: AgentRejected,
    grpc.StatusCode.FAILED_PRECONDITION: RuntimeMissing,
}


@dataclass(frozen=True)
class ClientTls:
    ca: Optional[Path] = None        # verifies the agent's certificate (None: system roots)
    cert: Optional[Path] = None      # with key: mutual TLS
    key: Optional[Path] = None
    server_name: Optional[str] = None  # override when the certificate's name differs from the address


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def _read(path: Optional[Path], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


# An unexpected failure inside the agent, as its servicer words it: method, exception type, message.
_AGENT_FAILURE = re.compile(r"^agent bug in (?P<method>\w+): (?:[\w.]+: )?(?P<message>.*)$", re.S)
_QUOTED_PATH = re.compile(r"""(?::\s*)?['"]?(?:/[^\s'":]+)+['"]?""")
_MESSAGE_MAX_CHARS = 300


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX_CHARS else text[:_MESSAGE_MAX_CHARS - 1] + "…"


def transport_cause(details: str) -> str:
    """What a user can act on in gRPC's transport text ("failed to connect to all addresses; last error: UNKNOWN:
    ipv4:10.0.0.5:50051: Failed to connect to remote host: Connection refused" -> "connection refused")."""
    text = _one_line(details).rstrip("]) ")
    lowered = text.lower()
    if "handshake" in lowered or "ssl" in lowered:
        reason = text.rsplit(":", 1)[-1].strip().replace("_", " ").lower()
        return f"TLS handshake failed: {reason}" if reason else "TLS handshake failed"
    cause = text.rsplit(": ", 1)[-1].strip(" [](){}")
    return (cause[:1].lower() + cause[1:]) if cause else "no reason given"


def agent_failure(details: str) -> str:
    """An unexpected failure the agent reported (INTERNAL / UNKNOWN), without its Python type names, errno numbers or
    the board's file paths: meaningless on the host; the agent's log keeps them."""
    found = _AGENT_FAILURE.match(details.strip())
    method = found.group("method") if found else ""
    message = found.group("message") if found else details.replace("Exception calling application:", "")
    message = _QUOTED_PATH.sub("", re.sub(r"\[Errno \d+\]\s*", "", message.splitlines()[0] if message else ""))
    message = _one_line(message).strip(" :;,") or "no reason given"
    where = f" in {method}" if method else ""
    return f"the agent failed unexpectedly{where} ({message}); its log has the details"


def call_error(address: str, code: grpc.StatusCode, details: str) -> AgentCallError:
    """The typed error for a status from the agent at ``address``: one line, the agent's own words where they mean
    something to the user (its error table), gRPC's and Python's internals reduced to their cause."""
    if code == grpc.StatusCode.UNAVAILABLE and details.startswith("the agent "):
        details = _one_line(details)   # the agent's own words (it is shutting down): say them as they are
    elif code == grpc.StatusCode.UNAVAILABLE:
        details = (f"agent unreachable ({transport_cause(details)}); is `fleetnas-agent serve` running there and the "
                   f"address right?")
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        details = "no answer before the deadline"
    elif code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        details = agent_failure(details)
    else:
        details = _one_line(details)
    error_type: Type[AgentCallError] = ERROR_TYPES.get(code, AgentCallError)
    return error_type(f"{address}: {details}", code=code.name, address=address)


class WireClient:
    """Calls with the contract's messages in and out (fleetnas.agent.v1), errors already typed."""

    def __init__(self, address: str, *, token: Optional[str] = None, tls: Optional[ClientTls] = None,
                 timeout_s: float = 30.0, channel: Optional[grpc.Channel] = None) -> None:
        """``channel``: calls go through it instead of a connection to ``address`` (a dial-in device's tunnel,
        fleetnas.host.fleet.tunnel); ``address`` then only names the device in messages."""
        self.address = address
        self.timeout_s = timeout_s
        options = [("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)]
        if channel is not None:
            self._channel = channel
        elif tls is not None:
            creds = grpc.ssl_channel_credentials(_read(tls.ca, "TLS CA file"), _read(tls.key, "TLS key file"),
                                                 _read(tls.cert, "TLS certificate file"))
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            self._channel = grpc.secure_channel(address, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stub = agent_pb2_grpc.AgentStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method, request, timeout_s: Optional[float]):
        try:
            return method(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            details = (exc.details() if hasattr(exc, "details") else "") or str(exc)
            raise call_error(self.address, code, details) from None

    def device_info(self, timeout_s: Optional[float] = None) -> pb.DeviceInfo:
        return self._call(self._stub.GetDeviceInfo, pb.GetDeviceInfoRequest(), timeout_s).info

    def has_model(self, sha256: str) -> bool:
        return self._call(self._stub.HasModel, pb.HasModelRequest(sha256=sha256), None).present

    def list_models(self) -> pb.ListModelsResponse:
        return self._call(self._stub.ListModels, pb.ListModelsRequest(), None)

    def delete_model(self, sha256: str) -> bool:
        return self._call(self._stub.DeleteModel, pb.DeleteModelRequest(sha256=sha256), None).deleted

    def upload(self, path: Path, *, sha256: Optional[str] = None, name: Optional[str] = None,
               model_format: Optional[str] = None, timeout_s: float = 600.0) -> pb.UploadModelResponse:
        """Stream a model file in ~1 MiB chunks (sha256 and size in the first message); the format defaults to the
        one the exporter registry gives the file's suffix."""
        path = Path(path)
        fmt = format_to_pb(model_format or format_of_file(path))
        sha = sha256 or file_sha256(path)

        def requests() -> Iterator[pb.UploadModelRequest]:
            yield pb.UploadModelRequest(header=pb.UploadHeader(
                sha256=sha, size_bytes=path.stat().st_size, format=fmt, name=name or path.name))
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
                    yield pb.UploadModelRequest(chunk=chunk)
        return self._call(self._stub.UploadModel, requests(), timeout_s)

    def ensure_model(self, path: Path, *, name: Optional[str] = None) -> Tuple[str, bool]:
        """(sha256, uploaded): upload only when the agent does not have the file yet."""
        sha = file_sha256(path)
        if self.has_model(sha):
            return sha, False
        self.upload(path, sha256=sha, name=name)
        return sha, True

    def measure_request(self, request: pb.MeasureRequest, timeout_s: Optional[float] = None) -> pb.MeasureResponse:
        """One measurement; the deadline defaults to the worker timeout plus time to queue behind others."""
        deadline = timeout_s or (request.timing.timeout_s or 300.0) + 300.0
        return self._call(self._stub.Measure, request, deadline)

    def measure(self, sha256: str, *, runtime: str = "onnxruntime",
                options: Optional[pb.RuntimeOptions] = None, timing: Optional[pb.TimingConfig] = None,
                energy: bool = False, request_id: str = "", timeout_s: Optional[float] = None,
                replay_only: bool = False) -> pb.MeasureResponse:
        request = pb.MeasureRequest(model_sha256=sha256, runtime=runtime, options=options or pb.RuntimeOptions(),
                                    timing=timing or pb.TimingConfig(), energy=pb.EnergyConfig(enabled=energy),
                                    request_id=request_id, replay_only=replay_only)
        return self.measure_request(request, timeout_s)

    def health(self, timeout_s: float = 5.0) -> bool:
        try:
            reply = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise AgentUnreachable(f"{self.address}: agent not reachable within {timeout_s:.0f} s",
                                   code="UNAVAILABLE", address=self.address) from None


class AgentClient:
    """One agent, in the host's records: what every host module above the seam uses."""

    def __init__(self, address: str, *, token: Optional[str] = None, tls: Optional[ClientTls] = None,
                 timeout_s: float = 30.0, channel: Optional[grpc.Channel] = None) -> None:
        self.wire = WireClient(address, token=token, tls=tls, timeout_s=timeout_s, channel=channel)
        self.address = address
        self.timeout_s = timeout_s

    def close(self) -> None:
        self.wire.close()

    def __enter__(self) -> "AgentClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def device_info(self, timeout_s: Optional[float] = None) -> DeviceInfo:
        return DeviceInfo.from_pb(self.wire.device_info(timeout_s))

    def has_model(self, sha256: str) -> bool:
        return self.wire.has_model(sha256)

    def list_models(self) -> ModelListing:
        return ModelListing.from_response(self.wire.list_models())

    def delete_model(self, sha256: str) -> bool:
        return self.wire.delete_model(sha256)

    def upload(self, path: Path, *, sha256: Optional[str] = None, name: Optional[str] = None,
               model_format: Optional[str] = None, timeout_s: float = 600.0) -> UploadResult:
        return UploadResult.from_response(self.wire.upload(path, sha256=sha256, name=name, model_format=model_format,
                                                           timeout_s=timeout_s))

    def ensure_model(self, path: Path, *, name: Optional[str] = None) -> Tuple[str, bool]:
        return self.wire.ensure_model(path, name=name)

    def measure(self, sha256: str, runtime: RuntimeConfig = RuntimeConfig(), *, request_id: str = "",
                replay_only: bool = False, timeout_s: Optional[float] = None) -> MeasureResult:
        """Measure stored model ``sha256`` as ``runtime`` says. ``replay_only``: measure nothing, return this
        agent's measurement of ``request_id`` (ModelNotFound when it has none)."""
        request = runtime.to_request(sha256, request_id=request_id, replay_only=replay_only)
        return MeasureResult.from_response(self.wire.measure_request(request, timeout_s))

    def health(self, timeout_s: float = 5.0) -> bool:
        return self.wire.health(timeout_s)

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        self.wire.wait_ready(timeout_s)


def outcome_name(response: pb.MeasureResponse) -> str:
    """A wire response's outcome as a plain name ("OK", "LOAD_FAILED", ...), for tests of the wire protocol."""
    return pb.Outcome.Name(response.outcome).replace("OUTCOME_", "")


__all__ = ["AgentClient", "ClientTls", "WireClient", "call_error", "file_sha256", "outcome_name"]
