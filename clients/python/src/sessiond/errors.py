"""The one exception hierarchy of the package, decoded from the server's
``google.rpc.ErrorInfo``.

Every error the server returns carries an ``ErrorInfo`` (domain
``"sessiond"``) whose reason is a value of the contract's ``ErrorReason``
(``proto/sessiond/v1/error_reason.proto``) without its ``ERROR_REASON_``
prefix. Each reason has one class here (:data:`ERROR_CLASSES`, keyed by the
reason; a test checks it against the generated enum), and
:func:`from_rpc_error` decodes a failed call into it, once, for the sync and
the asyncio client alike. All of them derive from :class:`SessiondError`,
which says the gRPC ``code``, the ``reason`` and the ``metadata``; a reason
this version does not know (from a newer server) is a plain
:class:`SessiondError` with that reason and its code, as the contract asks.

The seed's ``SessionNotFoundException`` is :class:`SessionNotFoundError`
(``sessiond.utilities`` offers it under the seed's name as well).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Optional

import grpc
from google.rpc import error_details_pb2, status_pb2

if TYPE_CHECKING:
    from .modules import ModuleFailure, RunState

#: The ``ErrorInfo`` domain of every error the server reports.
ERROR_DOMAIN = "sessiond"

# The trailer that carries a status's details (a serialized google.rpc.Status).
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class FieldViolation(NamedTuple):
    """One invalid field of a request (from the server's
    ``google.rpc.BadRequest``, or the client's own check before sending)."""

    field: str
    """The field's name in the request message (for example ``user``)."""
    description: str
    """What is wrong with it."""


class RequestSubject(NamedTuple):
    """What a request was about: fills in the ids an error's metadata leaves
    out."""

    session_id: Optional[int] = None
    module_id: Optional[str] = None
    scope_id: Optional[int] = None
    user: Optional[str] = None

    @classmethod
    def of(cls, request: Any) -> RequestSubject:
        """The ids a request message names (the contract spells them alike
        in every request: ``session_id``, ``module_id``, ``scope_id``,
        ``user``); unset ones are ``None``. Read only when a call failed,
        so that calls that succeed pay nothing for it."""
        fields = request.DESCRIPTOR.fields_by_name

        def named(name: str) -> Any:
            return (getattr(request, name) or None) if name in fields else None

        return cls(named("session_id"), named("module_id"), named("scope_id"), named("user"))


class SessiondError(Exception):
    """Base of every error the package raises.

    Attributes:
        message: the server's (or the client's) description.
        code: the gRPC status code; ``None`` for failures on the client's
            side (:class:`ConfigurationError`, :class:`InvalidResponseError`,
            :class:`ModuleFailedError`, an :class:`InvalidArgumentError`
            raised before sending).
        reason: the ``ErrorInfo`` reason (``"SESSION_NOT_FOUND"``…), or
            ``None`` when the status carried none.
        metadata: the ``ErrorInfo`` metadata (all values strings).
    """

    #: The reason a subclass decodes; ``None`` for the others.
    REASON: ClassVar[Optional[str]] = None

    def __init__(
        self,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        reason: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        subject: RequestSubject = RequestSubject(),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason if reason is not None else self.REASON
        self.metadata: Mapping[str, str] = dict(metadata or {})
        self._subject = subject

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code}, reason={self.reason!r})"

    # Typed metadata, with the request's own ids where the server named none.

    def _int(self, key: str, fallback: Optional[int] = None) -> Optional[int]:
        text = self.metadata.get(key)
        if text is not None:
            try:
                return int(text)
            except ValueError:
                pass
        return fallback

    def _str(self, key: str, fallback: Optional[str] = None) -> Optional[str]:
        return self.metadata.get(key, fallback)

    @property
    def session_id(self) -> Optional[int]:
        """The session the error is about, when there is one."""
        return self._int("session_id", self._subject.session_id)


class InvalidArgumentError(SessiondError):
    """``INVALID_ARGUMENT``: the request has invalid fields; nothing was done.

    Attributes:
        violations: every offending field (the server's ``BadRequest``).
    """

    REASON = "INVALID_ARGUMENT"

    def __init__(
        self, message: str, *, violations: Iterable[FieldViolation] = (), **kwargs: Any
    ) -> None:
        kwargs.setdefault("reason", self.REASON)
        super().__init__(message, **kwargs)
        self.violations = list(violations)


class SessionNotFoundError(SessiondError):
    """``SESSION_NOT_FOUND``: no session has this id, or the caller may not
    read it (the seed's ``SessionNotFoundException``)."""

    REASON = "SESSION_NOT_FOUND"


class SessionNotClientlessError(SessiondError):
    """``SESSION_NOT_CLIENTLESS``: a clientless-only operation (modules,
    closing) on an interactive session."""

    REASON = "SESSION_NOT_CLIENTLESS"


class SessionEndedError(SessiondError):
    """``SESSION_ENDED``: the session has ended; only reads are possible."""

    REASON = "SESSION_ENDED"


class SessionClosingError(SessiondError):
    """``SESSION_CLOSING``: the clientless session is closing and accepts no
    new modules."""

    REASON = "SESSION_CLOSING"


class ScopeNotFoundError(SessiondError):
    """``SCOPE_NOT_FOUND``: the user-context scope is not on the session's
    stack (already popped, or never pushed there)."""

    REASON = "SCOPE_NOT_FOUND"

    @property
    def scope_id(self) -> Optional[int]:
        """The scope asked for."""
        return self._int("scope_id", self._subject.scope_id)


class ScopeNotInnermostError(SessiondError):
    """``SCOPE_NOT_INNERMOST``: the scope is open but another one was pushed
    after it; scopes are restored innermost first."""

    REASON = "SCOPE_NOT_INNERMOST"

    @property
    def scope_id(self) -> Optional[int]:
        """The scope asked for."""
        return self._int("scope_id", self._subject.scope_id)

    @property
    def innermost_scope_id(self) -> Optional[int]:
        """The scope that may be restored now, when the server named it."""
        return self._int("innermost_scope_id")


class UnknownModuleError(SessiondError):
    """``MODULE_NOT_FOUND``: the server has no module with this id. (Not
    named after the reason, which would shadow Python's own
    ``ModuleNotFoundError``.)"""

    REASON = "MODULE_NOT_FOUND"

    @property
    def module_id(self) -> Optional[str]:
        """The module asked for."""
        return self._str("module_id", self._subject.module_id)


class ModuleNotOpenedError(SessiondError):
    """``MODULE_NOT_OPENED``: the module was never opened in this session."""

    REASON = "MODULE_NOT_OPENED"

    @property
    def module_id(self) -> Optional[str]:
        """The module asked for."""
        return self._str("module_id", self._subject.module_id)


class ModuleStillRunningError(SessiondError):
    """``MODULE_STILL_RUNNING``: the module's latest run did not conclude
    within the wait; it goes on running."""

    REASON = "MODULE_STILL_RUNNING"

    @property
    def module_id(self) -> Optional[str]:
        """The module."""
        return self._str("module_id", self._subject.module_id)

    @property
    def run_id(self) -> Optional[int]:
        """The run that is still running, when the server named it."""
        return self._int("run_id")


class TooManyRunningModulesError(SessiondError):
    """``TOO_MANY_RUNNING_MODULES``: as many modules are running as the
    server allows, in the session or in the whole server."""

    REASON = "TOO_MANY_RUNNING_MODULES"

    @property
    def scope(self) -> Optional[str]:
        """Where the limit applies: ``"session"`` or ``"server"``."""
        return self._str("scope")

    @property
    def limit(self) -> Optional[int]:
        """The limit reached."""
        return self._int("limit")


class TooManySessionsError(SessiondError):
    """``TOO_MANY_SESSIONS``: the user has as many open sessions as the
    server allows."""

    REASON = "TOO_MANY_SESSIONS"

    @property
    def user(self) -> Optional[str]:
        """The user."""
        return self._str("user", self._subject.user)

    @property
    def limit(self) -> Optional[int]:
        """The limit reached."""
        return self._int("limit")


class UnavailableError(SessiondError):
    """``UNAVAILABLE``: the server (or a part of it) cannot serve the call
    now; try again later. Without a reason: the connection failed (reads
    were already retried, per the client's :class:`~sessiond.RetryPolicy`).
    The subclasses are the reasons that come with this code."""


class OwnerUnavailableError(UnavailableError):
    """``OWNER_UNAVAILABLE``: the call had to be served by the replica that
    owns the session, which cannot be reached; its sessions are ended by
    another replica once its lease expires."""

    REASON = "OWNER_UNAVAILABLE"

    @property
    def node(self) -> Optional[str]:
        """The owner's node id."""
        return self._str("node")


class StoreUnavailableError(UnavailableError):
    """``STORE_UNAVAILABLE``: the server's store cannot be reached; nothing
    was changed."""

    REASON = "STORE_UNAVAILABLE"


class WatchTooSlowError(UnavailableError):
    """``WATCH_TOO_SLOW``: the server ended a watch that did not keep up;
    nothing was lost (a watch resumes by itself)."""

    REASON = "WATCH_TOO_SLOW"

    @property
    def revision(self) -> Optional[int]:
        """Every event up to this revision was sent."""
        return self._int("revision")


class ServerShuttingDownError(UnavailableError):
    """``SERVER_SHUTTING_DOWN``: the server is stopping; a stream it served
    ended (a watch resumes by itself)."""

    REASON = "SERVER_SHUTTING_DOWN"

    @property
    def revision(self) -> Optional[int]:
        """Every event up to this revision was sent."""
        return self._int("revision")


class InternalError(SessiondError):
    """``INTERNAL``: a fault inside the server; the cause is in its log."""

    REASON = "INTERNAL"


class UnauthenticatedError(SessiondError):
    """``UNAUTHENTICATED``: the server requires a credential and the call had
    none it accepts (see the client's ``token`` and ``tls``)."""

    REASON = "UNAUTHENTICATED"


class PermissionDeniedError(SessiondError):
    """``PERMISSION_DENIED``: the policy does not grant this action; nothing
    was done. (A session the caller may not read is
    :class:`SessionNotFoundError` instead.)"""

    REASON = "PERMISSION_DENIED"

    @property
    def permission(self) -> Optional[str]:
        """The permission refused, as the contract spells it (``"act_as"``)."""
        return self._str("permission")

    @property
    def subject(self) -> Optional[str]:
        """The caller, as the server authenticated it."""
        return self._str("subject")

    @property
    def user(self) -> Optional[str]:
        """The user acted as or taken for, where the action names one."""
        return self._str("user")

    @property
    def module_id(self) -> Optional[str]:
        """The module to run, for ``run_module``."""
        return self._str("module_id")


class RevisionCompactedError(SessiondError):
    """``REVISION_COMPACTED``: a watch or listing starts at a revision whose
    events are no longer kept; start again from the current state."""

    REASON = "REVISION_COMPACTED"

    @property
    def compact_revision(self) -> Optional[int]:
        """The oldest revision one may start after."""
        return self._int("compact_revision")


class DeadlineExceededError(SessiondError):
    """The call's deadline passed before it completed (``DEADLINE_EXCEEDED``
    without a reason); whether a write took effect is unknown."""


class ModuleFailedError(SessiondError):
    """The module's run concluded without a value: it failed or was
    cancelled. Not a status: the server answered with the run's outcome.

    Attributes:
        module_id: the module.
        run_id: the run.
        state: ``RunState.FAILED`` or ``RunState.CANCELLED``.
        failure: why: kind, message, exit code, signal, stderr tail.
    """

    def __init__(
        self,
        *,
        session_id: int,
        module_id: str,
        run_id: int,
        state: RunState,
        failure: ModuleFailure,
    ) -> None:
        super().__init__(
            f"module {module_id!r} in session {session_id} {state.name.lower()}: {failure.message}",
            subject=RequestSubject(session_id=session_id, module_id=module_id),
        )
        self.module_id = module_id
        self.run_id = run_id
        self.state = state
        self.failure = failure


class ConfigurationError(SessiondError):
    """The client's settings cannot be used (a malformed endpoint, TLS
    settings on an ``http://`` endpoint, no current session for
    ``sessiond.utilities``…); nothing was sent."""


class InvalidResponseError(SessiondError):
    """The server's answer breaks the contract (a required field unset, a
    UUID that does not parse…)."""


#: The class of each reason the contract defines.
ERROR_CLASSES: Mapping[str, type[SessiondError]] = {
    cls.REASON: cls
    for cls in (
        InvalidArgumentError,
        SessionNotFoundError,
        SessionNotClientlessError,
        SessionEndedError,
        SessionClosingError,
        ScopeNotFoundError,
        ScopeNotInnermostError,
        UnknownModuleError,
        ModuleNotOpenedError,
        ModuleStillRunningError,
        TooManyRunningModulesError,
        TooManySessionsError,
        OwnerUnavailableError,
        StoreUnavailableError,
        InternalError,
        UnauthenticatedError,
        PermissionDeniedError,
        RevisionCompactedError,
        WatchTooSlowError,
        ServerShuttingDownError,
    )
    if cls.REASON is not None
}


class _StatusDetails(NamedTuple):
    error_info: Optional[error_details_pb2.ErrorInfo]
    bad_request: Optional[error_details_pb2.BadRequest]


def _details(error: Any) -> _StatusDetails:
    """The sessiond ``ErrorInfo`` and the ``BadRequest`` of a failed call."""
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - a call that never reached a server
        trailers = ()
    encoded = next((value for key, value in trailers if key == _STATUS_DETAILS_KEY), None)
    if not isinstance(encoded, bytes):
        return _StatusDetails(None, None)
    try:
        status = status_pb2.Status.FromString(encoded)
    except Exception:  # noqa: BLE001 - undecodable details are no details
        return _StatusDetails(None, None)
    error_info = bad_request = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN:
                error_info = info
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
    return _StatusDetails(error_info, bad_request)


def reason_of(error: Any) -> Optional[str]:
    """The sessiond ``ErrorInfo`` reason of a failed call, if it has one."""
    info = _details(error).error_info
    return info.reason if info is not None else None


def from_rpc_error(error: Any, subject: RequestSubject = RequestSubject()) -> SessiondError:
    """Decodes a failed call (a ``grpc.RpcError`` of the sync API or a
    ``grpc.aio.AioRpcError``) into the class of its reason.

    ``subject`` says what the request was about, for the ids the server's
    metadata leaves out.
    """
    code: Optional[grpc.StatusCode] = error.code()
    message: str = error.details() or (code.name if code is not None else "the call failed")
    info, bad_request = _details(error)
    if info is None:
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceededError(message, code=code, subject=subject)
        if code == grpc.StatusCode.UNAVAILABLE:
            return UnavailableError(message, code=code, subject=subject)
        return SessiondError(message, code=code, subject=subject)
    cls = ERROR_CLASSES.get(info.reason, SessiondError)
    metadata = dict(info.metadata)
    if cls is InvalidArgumentError:
        violations = (
            [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
            if bad_request is not None
            else []
        )
        return InvalidArgumentError(
            message, violations=violations, code=code, metadata=metadata, subject=subject
        )
    return cls(message, code=code, reason=info.reason, metadata=metadata, subject=subject)


__all__ = [
    "ERROR_CLASSES",
    "ERROR_DOMAIN",
    "ConfigurationError",
    "DeadlineExceededError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "InvalidResponseError",
    "ModuleFailedError",
    "ModuleNotOpenedError",
    "ModuleStillRunningError",
    "OwnerUnavailableError",
    "PermissionDeniedError",
    "RevisionCompactedError",
    "ScopeNotFoundError",
    "ScopeNotInnermostError",
    "ServerShuttingDownError",
    "SessionClosingError",
    "SessionEndedError",
    "SessionNotClientlessError",
    "SessionNotFoundError",
    "SessiondError",
    "StoreUnavailableError",
    "TooManyRunningModulesError",
    "TooManySessionsError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnknownModuleError",
    "WatchTooSlowError",
]
