"""Every unary RPC once, for the sync and the asyncio client alike: the
request it sends, how it may be retried (:class:`~sessiond.retry.CallKind`),
what it is about (for errors), how long it may wait on purpose, and what its
answer means. A client only sends a :class:`Plan` and decodes with it."""

from __future__ import annotations

import datetime
import operator
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Generic, NamedTuple, Optional, Sequence, TypeVar, Union

from . import _wire
from .access import AccessDecision, Permission, WhoAmI
from .errors import FieldViolation, InvalidArgumentError
from .events import Checkpoint, EventKind, EventPage, LedgerVerification
from .modules import ModuleRun, return_value
from .retry import CallKind
from .sessions import SessionInfo, SessionKind, SessionPage, SessionState
from .user_contexts import PoppedScope, PushedScope, UserContextInfo
from .v1 import (
    access_service_pb2 as access_pb,
    audit_service_pb2 as audit_pb,
    session_service_pb2 as sessions_pb,
    user_context_service_pb2 as contexts_pb,
)

T = TypeVar("T")

#: The longest grace the server accepts (one hour): the deadline of a close
#: without a grace of its own is extended by it.
MAX_GRACE = 3600.0


class Rpc(NamedTuple):
    """One RPC: its service, its name, and how it may be retried."""

    service: str
    name: str
    kind: CallKind


SESSIONS = "sessiond.v1.SessionService"
CONTEXTS = "sessiond.v1.UserContextService"
ACCESS = "sessiond.v1.AccessService"
AUDIT = "sessiond.v1.AuditService"

GET_SESSION_USER = Rpc(SESSIONS, "GetSessionUser", CallKind.READ)
GET_SESSION_INFO = Rpc(SESSIONS, "GetSessionInfo", CallKind.READ)
LIST_SESSIONS = Rpc(SESSIONS, "ListSessions", CallKind.READ)
START_SESSION = Rpc(SESSIONS, "StartSession", CallKind.WRITE)
TOUCH_SESSION = Rpc(SESSIONS, "TouchSession", CallKind.IDEMPOTENT_WRITE)
END_SESSION = Rpc(SESSIONS, "EndSession", CallKind.IDEMPOTENT_WRITE)
OPEN_CLIENTLESS_SESSION = Rpc(SESSIONS, "OpenClientlessSession", CallKind.WRITE)
CLOSE_CLIENTLESS_SESSION = Rpc(SESSIONS, "CloseClientlessSession", CallKind.IDEMPOTENT_WRITE)
OPEN_MODULE = Rpc(SESSIONS, "OpenModule", CallKind.WRITE)
GET_RETURN_VALUE = Rpc(SESSIONS, "GetReturnValue", CallKind.READ)
GET_USER_CONTEXT = Rpc(CONTEXTS, "GetUserContext", CallKind.READ)
SET_USER_CONTEXT = Rpc(CONTEXTS, "SetUserContext", CallKind.WRITE)
PUSH_USER_CONTEXT = Rpc(CONTEXTS, "PushUserContext", CallKind.WRITE)
POP_USER_CONTEXT = Rpc(CONTEXTS, "PopUserContext", CallKind.WRITE)
WHO_AM_I = Rpc(ACCESS, "WhoAmI", CallKind.READ)
CHECK_ACCESS = Rpc(ACCESS, "CheckAccess", CallKind.READ)
LIST_EVENTS = Rpc(AUDIT, "ListEvents", CallKind.READ)
VERIFY_LEDGER = Rpc(AUDIT, "VerifyLedger", CallKind.READ)
GET_CHECKPOINT = Rpc(AUDIT, "GetCheckpoint", CallKind.READ)

#: Every unary RPC of the contract (WatchSessions, the one stream, is the
#: watch's own).
UNARY_RPCS = (
    GET_SESSION_USER,
    GET_SESSION_INFO,
    LIST_SESSIONS,
    START_SESSION,
    TOUCH_SESSION,
    END_SESSION,
    OPEN_CLIENTLESS_SESSION,
    CLOSE_CLIENTLESS_SESSION,
    OPEN_MODULE,
    GET_RETURN_VALUE,
    GET_USER_CONTEXT,
    SET_USER_CONTEXT,
    PUSH_USER_CONTEXT,
    POP_USER_CONTEXT,
    WHO_AM_I,
    CHECK_ACCESS,
    LIST_EVENTS,
    VERIFY_LEDGER,
    GET_CHECKPOINT,
)


class Plan(Generic[T]):
    """One call to make: the RPC, its request, extra deadline, and how to
    read the answer. (What the call is about, for its errors, is read from
    the request when it fails: ``RequestSubject.of``.)"""

    __slots__ = ("decode", "extra_time", "request", "rpc")

    def __init__(
        self,
        rpc: Rpc,
        request: Any,
        decode: Callable[[Any], T],
        extra_time: float = 0.0,
    ) -> None:
        self.rpc = rpc
        self.request = request
        self.decode = decode
        self.extra_time = extra_time


def session_id_of(value: Any, field: str = "session_id") -> int:
    """A session (or scope) id as an ``int``: an ``int``, or a string of
    digits (as ``SESSIOND_SESSION_ID`` holds one).

    Raises:
        InvalidArgumentError: for anything else; nothing is sent.
    """
    if type(value) is int:  # the common case first: not bool, which is an int too
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InvalidArgumentError(
        f"{field} {value!r} is not an id",
        violations=[FieldViolation(field, "must be a positive integer")],
    )


def _seconds(value: Union[float, datetime.timedelta], field: str) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise InvalidArgumentError(
            f"{field} {value!r} is not a number of seconds",
            violations=[FieldViolation(field, "must be a number of seconds >= 0")],
        )
    return float(value)


_user = operator.attrgetter("user")


def _session_record(response: Any) -> SessionInfo:
    return SessionInfo.from_response(response)


def get_session_user(session_id: int) -> Plan[str]:
    sid = session_id_of(session_id)
    return Plan(
        GET_SESSION_USER,
        sessions_pb.GetSessionUserRequest(session_id=sid),
        _user,
    )


def get_session_info(session_id: int) -> Plan[SessionInfo]:
    sid = session_id_of(session_id)
    return Plan(
        GET_SESSION_INFO,
        sessions_pb.GetSessionInfoRequest(session_id=sid),
        _session_record,
    )


def list_sessions_page(
    user: Optional[str],
    kind: Optional[SessionKind],
    state: Optional[SessionState],
    page_size: int,
    page_token: Optional[str],
    states: Sequence[SessionState] = (),
) -> Plan[SessionPage]:
    request = sessions_pb.ListSessionsRequest(
        user=user or "",
        kind=kind.wire_name if kind is not None else None,
        state=state.wire_name if state is not None else None,
        states=[s.wire_name for s in states],
        page_size=page_size,
        page_token=page_token or "",
    )

    def decode(response: sessions_pb.ListSessionsResponse) -> SessionPage:
        return SessionPage(
            sessions=[SessionInfo.from_pb(record) for record in response.sessions],
            next_page_token=response.next_page_token or None,
        )

    return Plan(LIST_SESSIONS, request, decode)


def start_session(user: str, client: str) -> Plan[SessionInfo]:
    return Plan(
        START_SESSION,
        sessions_pb.StartSessionRequest(user=user, client=client),
        _session_record,
    )


def touch_session(session_id: int) -> Plan[datetime.datetime]:
    sid = session_id_of(session_id)
    return Plan(
        TOUCH_SESSION,
        sessions_pb.TouchSessionRequest(session_id=sid),
        lambda response: _wire.required_datetime(response, "last_activity_time"),
    )


def end_session(session_id: int) -> Plan[SessionInfo]:
    sid = session_id_of(session_id)
    return Plan(
        END_SESSION,
        sessions_pb.EndSessionRequest(session_id=sid),
        _session_record,
        extra_time=MAX_GRACE,
    )


def open_clientless_session(user: str) -> Plan[SessionInfo]:
    return Plan(
        OPEN_CLIENTLESS_SESSION,
        sessions_pb.OpenClientlessSessionRequest(user=user),
        _session_record,
    )


def close_clientless_session(session_id: int, grace: Optional[float]) -> Plan[SessionInfo]:
    sid = session_id_of(session_id)
    request = sessions_pb.CloseClientlessSessionRequest(session_id=sid)
    if grace is not None:
        grace = _seconds(grace, "grace")
        request.grace.CopyFrom(_wire.to_duration(grace))
    return Plan(
        CLOSE_CLIENTLESS_SESSION,
        request,
        _session_record,
        extra_time=MAX_GRACE if grace is None else grace,
    )


def open_module(
    session_id: int, module_id: str, parameters: Optional[Mapping[str, Any]]
) -> Plan[ModuleRun]:
    sid = session_id_of(session_id)
    request = sessions_pb.OpenModuleRequest(session_id=sid, module_id=module_id)
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise InvalidArgumentError(
                "module parameters must be a mapping (a JSON object)",
                violations=[FieldViolation("parameters", "must be a JSON object")],
            )
        request.parameters.CopyFrom(_wire.to_struct(parameters))
    return Plan(
        OPEN_MODULE,
        request,
        ModuleRun.from_pb,
    )


def get_return_value(session_id: int, module_id: str, timeout: float) -> Plan[Any]:
    sid = session_id_of(session_id)
    wait = _seconds(timeout, "timeout")
    request = sessions_pb.GetReturnValueRequest(
        session_id=sid, module_id=module_id, timeout=_wire.to_duration(wait)
    )
    return Plan(
        GET_RETURN_VALUE,
        request,
        lambda response: return_value(sid, module_id, response),
        extra_time=wait,
    )


def get_user_context(session_id: int) -> Plan[UserContextInfo]:
    sid = session_id_of(session_id)
    return Plan(
        GET_USER_CONTEXT,
        contexts_pb.GetUserContextRequest(session_id=sid),
        lambda r: UserContextInfo(user=r.user, session_user=r.session_user, depth=r.depth),
    )


def set_user_context(session_id: int, user: str) -> Plan[str]:
    sid = session_id_of(session_id)
    return Plan(
        SET_USER_CONTEXT,
        contexts_pb.SetUserContextRequest(session_id=sid, user=user),
        operator.attrgetter("previous_user"),
    )


def push_user_context(session_id: int, user: str) -> Plan[PushedScope]:
    sid = session_id_of(session_id)
    return Plan(
        PUSH_USER_CONTEXT,
        contexts_pb.PushUserContextRequest(session_id=sid, user=user),
        lambda r: PushedScope(scope_id=r.scope_id, previous_user=r.previous_user, depth=r.depth),
    )


def pop_user_context(session_id: int, scope_id: int) -> Plan[PoppedScope]:
    sid = session_id_of(session_id)
    scope = session_id_of(scope_id, "scope_id")
    return Plan(
        POP_USER_CONTEXT,
        contexts_pb.PopUserContextRequest(session_id=sid, scope_id=scope),
        lambda r: PoppedScope(user=r.user, depth=r.depth),
    )


def who_am_i() -> Plan[WhoAmI]:
    return Plan(WHO_AM_I, access_pb.WhoAmIRequest(), WhoAmI.from_pb)


def check_access(
    permission: Permission,
    session_id: Optional[int],
    user: Optional[str],
    module_id: Optional[str],
) -> Plan[AccessDecision]:
    sid = session_id_of(session_id) if session_id is not None else None
    request = access_pb.CheckAccessRequest(
        permission=permission.wire_name,
        session_id=sid or 0,
        user=user or "",
        module_id=module_id or "",
    )
    return Plan(
        CHECK_ACCESS,
        request,
        lambda r: AccessDecision(allowed=r.allowed, reason=r.reason),
    )


def list_events_page(
    *,
    session_id: Optional[int],
    user: Optional[str],
    subject: Optional[str],
    kinds: Iterable[EventKind],
    start_time: Optional[datetime.datetime],
    end_time: Optional[datetime.datetime],
    after_revision: int,
    newest_first: bool,
    page_size: int,
    page_token: Optional[str],
) -> Plan[EventPage]:
    sid = session_id_of(session_id) if session_id is not None else None
    request = audit_pb.ListEventsRequest(
        session_id=sid or 0,
        user=user or "",
        subject=subject or "",
        kinds=[kind.wire_name for kind in kinds],
        after_revision=after_revision,
        page_size=page_size,
        page_token=page_token or "",
        newest_first=newest_first,
    )
    if start_time is not None:
        request.start_time.CopyFrom(_wire.to_timestamp(start_time))
    if end_time is not None:
        request.end_time.CopyFrom(_wire.to_timestamp(end_time))
    return Plan(LIST_EVENTS, request, EventPage.from_pb)


def verify_ledger(from_revision: int, to_revision: int) -> Plan[LedgerVerification]:
    return Plan(
        VERIFY_LEDGER,
        audit_pb.VerifyLedgerRequest(from_revision=from_revision, to_revision=to_revision),
        LedgerVerification.from_pb,
    )


def get_checkpoint() -> Plan[Checkpoint]:
    return Plan(GET_CHECKPOINT, audit_pb.GetCheckpointRequest(), Checkpoint.from_pb)
