"""Errors the mixcal client raises instead of raw gRPC errors.

Every error is a :class:`MixcalError`; the subclass says what kind, its
message is the coordinator's (it names the field and the allowed range for
bad input, the sweep or job that does not exist, ...).
"""


class MixcalError(Exception):
    """A call to the coordinator failed. ``code`` is the gRPC status name."""

    def __init__(self, message, code=""):
        super().__init__(message)
        self.code = code


class NotFound(MixcalError):
    """The sweep, job, split or epoch asked for does not exist."""


class InvalidArgument(MixcalError):
    """A request (a sweep spec, a split name, a limit) was refused as wrong."""


class PermissionDenied(MixcalError):
    """The token's role may not make this call (docs/security.md)."""


class Unauthenticated(MixcalError):
    """No token, or one the coordinator does not know."""


class Unavailable(MixcalError):
    """The coordinator cannot be reached (not running, wrong address, TLS)."""


class FailedPrecondition(MixcalError):
    """The request cannot be served in the store's present state."""


class ResourceExhausted(MixcalError):
    """A limit was reached (jobs per submitter, watchers, message size)."""


_BY_CODE = {
    "NOT_FOUND": NotFound,
    "INVALID_ARGUMENT": InvalidArgument,
    "PERMISSION_DENIED": PermissionDenied,
    "UNAUTHENTICATED": Unauthenticated,
    "UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": Unavailable,
    "FAILED_PRECONDITION": FailedPrecondition,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
}


def from_rpc_error(error, address=""):
    """The MixcalError for a grpc.RpcError."""
    code = error.code().name if error.code() is not None else "UNKNOWN"
    details = error.details() or code
    if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and address:
        details = "cannot reach the coordinator at %s (%s)" % (address, details)
    return _BY_CODE.get(code, MixcalError)(details, code)
