"""The host's one exception tree. The CLI prints ``error: <message>`` for these (no traceback) and exits 2."""


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
