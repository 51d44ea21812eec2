"""The host's one exception tree. The CLI prints ``error: <message>`` for these (no traceback) and exits 2."""
from typing import Optional


class FleetnasError(Exception):
    """Root of every error the host reports to a user."""


class UsageError(FleetnasError):
    """A flag, file or value given by the user is wrong; the message says what to do instead."""


class AgentCallError(FleetnasError):
    """An agent answered with an error status; the message is the agent's own, prefixed with its address."""

    def __init__(self, message: str, code: str = "", address: str = "") -> None:
        super().__init__(message)
        self.code = code          # grpc status name, e.g. "UNAVAILABLE"
        self.address = address


# Top-level packages that only an extra installs -> that extra (pyproject.toml [project.optional-dependencies]).
# A board install (`pip install fleetnas`) has none of the host's.
OPTIONAL_MODULES = {**{m: "host" for m in ("torch", "onnx", "onnxscript", "pymoo", "sklearn", "scipy", "matplotlib",
                                           "rich", "tomli")},
                    "litert_torch": "tflite-export", "ai_edge_litert": "litert"}


def missing_extra(exc: ImportError) -> Optional[str]:
    """The extra whose package ``exc`` says is missing, or None when it is not an optional package of fleetnas."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    return OPTIONAL_MODULES.get((exc.name or "").split(".")[0])
