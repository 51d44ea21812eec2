"""The agent's one exception tree. fleetnas.agent.rpc.servicer maps each class to exactly one gRPC status code.

A model that loads but fails on the device is a MeasureResult with a typed outcome, never one of these.
"""


class AgentError(Exception):
    """Root of every error the agent reports to a caller."""


class InvalidModel(AgentError):
    """Upload refused: not an ONNX protobuf / TFLite flatbuffer, sha256 or size mismatch (INVALID_ARGUMENT)."""


class InvalidRequest(AgentError):
    """A request field is out of range or missing (INVALID_ARGUMENT)."""


class ModelNotFound(AgentError):
    """The model is not in the store (NOT_FOUND): call UploadModel first."""


class RuntimeUnavailable(AgentError):
    """The requested runtime is not installed on this board (FAILED_PRECONDITION), with the install hint."""


class ShuttingDown(AgentError):
    """The agent is stopping: new measurements are refused and the running one is cancelled (UNAVAILABLE)."""


class Busy(AgentError):
    """The measurement queue is full, or the store cannot fit the model (RESOURCE_EXHAUSTED)."""
