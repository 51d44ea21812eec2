"""The host's one exception tree. The CLI prints ``error: <message>`` for these (no traceback) and exits 2.

``AgentCallError`` and its subclasses mirror the agent's error table (fleetnas.agent.rpc.servicer maps each agent error to
one gRPC status; fleetnas.host.fleet.client maps the status back to one of these), so callers catch a type and never
look at status names.
"""
from typing import Optional


class FleetnasError(Exception):
    """Root of every error the host reports to a user."""


class UsageError(FleetnasError):
    """A flag, file or value given by the user is wrong; the message says what to do instead."""


class AgentCallError(FleetnasError):
    """An agent answered with an error status; the message is the agent's own, prefixed with its address."""

    def __init__(self, message: str, code: str = "", address: str = "") -> None:
        super().__init__(message)
        self.code = code          # grpc status name, e.g. "UNAVAILABLE" (kept for logs and older callers)
        self.address = address


# Top-level packages that only an extra installs -> that extra (pyproject.toml [project.optional-dependencies]).
# A board install (`pip install fleetnas`) has none of the host's.
OPTIONAL_MODULES = {**{m: "host" for m in ("torch", "onnx", "onnxscript", "pymoo", "sklearn", "scipy", "matplotlib",
                                           "rich", "tomli")},
                    "litert_torch": "tflite-export", "ai_edge_litert": "litert", "executorch": "executorch",
                    "torchao": "executorch", "ray": "ray"}


def missing_extra(exc: ImportError) -> Optional[str]:
    """The extra whose package ``exc`` says is missing, or None when it is not an optional package of fleetnas."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    return OPTIONAL_MODULES.get((exc.name or "").split(".")[0])

class AgentUnreachable(AgentCallError):
    """UNAVAILABLE, DEADLINE_EXCEEDED or CANCELLED: the agent is down, cut off or did not answer in time."""


class ModelNotFound(AgentCallError):
    """NOT_FOUND: the agent does not hold that model (upload it first), or has no result for a replayed request."""


class AgentBusy(AgentCallError):
    """RESOURCE_EXHAUSTED: the agent's measurement queue is full, or its store cannot fit the model."""


class AgentAuthError(AgentCallError):
    """UNAUTHENTICATED / PERMISSION_DENIED: missing or wrong token."""


class AgentRejected(AgentCallError):
    """INVALID_ARGUMENT: the agent refused a request field or an uploaded file (the message says which)."""


class RuntimeMissing(AgentCallError):
    """FAILED_PRECONDITION: the requested runtime is not installed on the board (the message has the install hint)."""
