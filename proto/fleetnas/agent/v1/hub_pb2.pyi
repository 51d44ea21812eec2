from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Challenge(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    def __init__(self, nonce: _Optional[bytes] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("device_name", "device_id", "fingerprint_sha256", "agent_version", "nonce", "token_proof")
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_SHA256_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_PROOF_FIELD_NUMBER: _ClassVar[int]
    device_name: str
    device_id: str
    fingerprint_sha256: str
    agent_version: str
    nonce: bytes
    token_proof: bytes
    def __init__(self, device_name: _Optional[str] = ..., device_id: _Optional[str] = ..., fingerprint_sha256: _Optional[str] = ..., agent_version: _Optional[str] = ..., nonce: _Optional[bytes] = ..., token_proof: _Optional[bytes] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("token_proof", "ping_interval_s")
    TOKEN_PROOF_FIELD_NUMBER: _ClassVar[int]
    PING_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    token_proof: bytes
    ping_interval_s: float
    def __init__(self, token_proof: _Optional[bytes] = ..., ping_interval_s: _Optional[float] = ...) -> None: ...

class CallStatus(_message.Message):
    __slots__ = ("code", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    details: str
    def __init__(self, code: _Optional[int] = ..., details: _Optional[str] = ...) -> None: ...

class TunnelFrame(_message.Message):
    __slots__ = ("call_id", "challenge", "hello", "welcome", "method", "request", "requests_done", "response", "status", "cancel", "ping", "timeout_s")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_DONE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    challenge: Challenge
    hello: Hello
    welcome: Welcome
    method: str
    request: bytes
    requests_done: bool
    response: bytes
    status: CallStatus
    cancel: bool
    ping: bool
    timeout_s: float
    def __init__(self, call_id: _Optional[int] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., method: _Optional[str] = ..., request: _Optional[bytes] = ..., requests_done: _Optional[bool] = ..., response: _Optional[bytes] = ..., status: _Optional[_Union[CallStatus, _Mapping]] = ..., cancel: _Optional[bool] = ..., ping: _Optional[bool] = ..., timeout_s: _Optional[float] = ...) -> None: ...
