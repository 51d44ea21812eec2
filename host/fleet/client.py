"""The host's thin client for one agent: the only module on the host that imports grpc.

Every call has a deadline; gRPC errors come back as ``AgentCallError`` (with the status name in ``.code`` and the
agent's own message), so callers never see grpc. Results are the contract's messages (fleetnas.agent.v1);
``message_to_dict`` turns one into plain JSON-able data for journals and reports.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import grpc
from google.protobuf.json_format import MessageToDict

from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.agent.v1 import agent_pb2_grpc
from fleetnas.host.errors import AgentCallError, UsageError

CHUNK_BYTES = 1 << 20
_FORMATS = {".onnx": pb.MODEL_FORMAT_ONNX, ".tflite": pb.MODEL_FORMAT_TFLITE}
_RUNTIME_FOR_FORMAT = {pb.MODEL_FORMAT_ONNX: "onnxruntime", pb.MODEL_FORMAT_TFLITE: "litert"}


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


def model_format(path: Path) -> int:
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: unknown model type; fleetnas measures .onnx and .tflite files")
    return fmt


def default_runtime(path: Path) -> str:
    return _RUNTIME_FOR_FORMAT[model_format(path)]


def message_to_dict(message) -> dict:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _read(path: Optional[Path], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


class AgentClient:
    def __init__(self, address: str, *, token: Optional[str] = None, tls: Optional[ClientTls] = None,
                 timeout_s: float = 30.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        options = [("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)]
        if tls is not None:
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

    def __enter__(self) -> "AgentClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ calls
    def _call(self, method, request, timeout_s: Optional[float]):
        try:
            return method(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def _error(self, exc: grpc.RpcError) -> AgentCallError:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = (exc.details() if hasattr(exc, "details") else "") or str(exc)
        if code == grpc.StatusCode.UNAVAILABLE:
            details = f"agent unreachable ({details}); is `fleetnas-agent serve` running there and the address right?"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            details = f"no answer before the deadline ({details})"
        return AgentCallError(f"{self.address}: {details}", code=code.name, address=self.address)

    def device_info(self, timeout_s: Optional[float] = None) -> pb.DeviceInfo:
        return self._call(self._stub.GetDeviceInfo, pb.GetDeviceInfoRequest(), timeout_s).info

    def has_model(self, sha256: str) -> bool:
        return self._call(self._stub.HasModel, pb.HasModelRequest(sha256=sha256), None).present

    def list_models(self) -> pb.ListModelsResponse:
        return self._call(self._stub.ListModels, pb.ListModelsRequest(), None)

    def delete_model(self, sha256: str) -> bool:
        return self._call(self._stub.DeleteModel, pb.DeleteModelRequest(sha256=sha256), None).deleted

    def upload(self, path: Path, *, sha256: Optional[str] = None, name: Optional[str] = None,
               timeout_s: float = 600.0) -> pb.UploadModelResponse:
        """Stream a model file in ~1 MiB chunks (sha256 and size in the first message)."""
        path = Path(path)
        fmt = model_format(path)
        sha = sha256 or file_sha256(path)

        def requests() -> Iterator[pb.UploadModelRequest]:
            yield pb.UploadModelRequest(header=pb.UploadHeader(
                sha256=sha, size_bytes=path.stat().st_size, format=fmt, name=name or path.name))
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
                    yield pb.UploadModelRequest(chunk=chunk)
        return self._call(self._stub.UploadModel, requests(), timeout_s)

    def ensure_model(self, path: Path, *, name: Optional[str] = None) -> tuple:
        """(sha256, uploaded): upload only when the agent does not have the file yet."""
        sha = file_sha256(path)
        if self.has_model(sha):
            return sha, False
        self.upload(path, sha256=sha, name=name)
        return sha, True

    def measure(self, sha256: str, *, runtime: str = "onnxruntime",
                options: Optional[pb.RuntimeOptions] = None, timing: Optional[pb.TimingConfig] = None,
                energy: bool = False, request_id: str = "", timeout_s: Optional[float] = None,
                replay_only: bool = False) -> pb.MeasureResponse:
        """One measurement; the deadline defaults to the worker timeout plus time to queue behind others.

        ``replay_only``: measure nothing, return this agent's measurement of ``request_id`` (NOT_FOUND if none)."""
        timing = timing or pb.TimingConfig()
        request = pb.MeasureRequest(model_sha256=sha256, runtime=runtime, options=options or pb.RuntimeOptions(),
                                    timing=timing, energy=pb.EnergyConfig(enabled=energy), request_id=request_id,
                                    replay_only=replay_only)
        deadline = timeout_s or (timing.timeout_s or 300.0) + 300.0
        return self._call(self._stub.Measure, request, deadline)

    def health(self, timeout_s: float = 5.0) -> bool:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
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
            raise AgentCallError(f"{self.address}: agent not reachable within {timeout_s:.0f} s", code="UNAVAILABLE",
                                 address=self.address) from None


def outcome_name(response: pb.MeasureResponse) -> str:
    return pb.Outcome.Name(response.outcome).replace("OUTCOME_", "")


def stability_name(response: pb.MeasureResponse) -> str:
    return pb.Stability.Name(response.stability).replace("STABILITY_", "")


__all__: List[str] = ["AgentClient", "ClientTls", "file_sha256", "message_to_dict", "outcome_name"]
