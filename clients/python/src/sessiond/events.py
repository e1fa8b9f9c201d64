"""The event log: one :class:`Event` per change to a session, as the audit
trail lists them and a watch delivers them; what a watch delivers besides
(:class:`WatchProgress`, :class:`InitialStateEnd`); a listing's page
(:class:`EventPage`), a verification (:class:`LedgerVerification`) and the
log's :class:`Checkpoint`."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Optional, Union

from . import _wire
from ._enums import ContractEnum
from .access import AuthenticationMethod
from .errors import InvalidResponseError
from .modules import ModuleFailureKind, RunState
from .sessions import EndReason, SessionInfo
from .v1 import audit_service_pb2, event_pb2


class EventKind(ContractEnum):
    """What an event records."""

    SESSION_STARTED = 1
    CLIENTLESS_SESSION_OPENED = 2
    SESSION_CLOSING = 3
    """A clientless session began closing; ``end_reason`` is why it will end."""
    SESSION_ENDED = 4
    USER_CONTEXT_SET = 5
    USER_CONTEXT_PUSHED = 6
    USER_CONTEXT_POPPED = 7
    RUN_STARTED = 8
    RUN_CONCLUDED = 9
    CALL_REFUSED = 10
    """A call was refused (audit trail only, never on a watch)."""
    SESSION_SNAPSHOT = 11
    """On a watch with the initial state only: an open session, its record
    in ``session``; not in the log, no hash."""


def _hash(raw: bytes, field: str) -> Optional[bytes]:
    if not raw:
        return None
    if len(raw) != 32:
        raise InvalidResponseError(f"{field} has {len(raw)} bytes, not 32")
    return raw


@dataclass(frozen=True)
class Event:
    """One change to a session, as the log recorded it. Fields that do not
    apply to an event's ``kind`` are ``None`` or empty."""

    revision: int
    """Its position in the log, strictly increasing in commit order (a
    snapshot carries the initial state's revision)."""
    time: datetime.datetime
    kind: EventKind
    session_id: Optional[int]
    session_uuid: Optional[uuid.UUID]
    user: str
    """The session's user."""
    effective_user: str
    """The user the session acts as after the change."""
    subject: str
    """Who made the change: the caller's subject, ``"anonymous"``, or
    ``"system:sessiond"`` for what the server did by itself."""
    authentication_method: Optional[AuthenticationMethod]
    peer: str
    run_id: Optional[int]
    module_id: str
    end_reason: Optional[EndReason]
    run_state: Optional[RunState]
    failure_kind: Optional[ModuleFailureKind]
    request_id: str
    traceparent: str
    scope_id: Optional[int]
    method: str
    """The gRPC method refused, for ``CALL_REFUSED``."""
    error_reason: str
    """The ``ErrorInfo`` reason of the refusal, for ``CALL_REFUSED``."""
    session: Optional[SessionInfo]
    """The session's record, for ``SESSION_SNAPSHOT`` only."""
    prev_hash: Optional[bytes]
    """The hash of the event before this one (32 bytes); ``None`` for a snapshot."""
    hash: Optional[bytes]
    """SHA-256 over ``prev_hash`` and this event's canonical encoding;
    ``None`` for a snapshot."""

    @classmethod
    def from_pb(cls, event: event_pb2.Event) -> Event:
        """Decodes the contract's ``Event``.

        Raises:
            InvalidResponseError: when it breaks the contract.
        """
        return cls(
            revision=event.revision,
            time=_wire.required_datetime(event, "time"),
            kind=EventKind.required(event.kind, "kind"),
            session_id=event.session_id or None,
            session_uuid=(
                _wire.to_uuid(event.session_uuid, "session_uuid") if event.session_uuid else None
            ),
            user=event.user,
            effective_user=event.effective_user,
            subject=event.subject,
            authentication_method=AuthenticationMethod.from_wire(event.authentication_method),
            peer=event.peer,
            run_id=event.run_id or None,
            module_id=event.module_id,
            end_reason=EndReason.from_wire(event.end_reason),
            run_state=RunState.from_wire(event.run_state),
            failure_kind=ModuleFailureKind.from_wire(event.failure_kind),
            request_id=event.request_id,
            traceparent=event.traceparent,
            scope_id=event.scope_id or None,
            method=event.method,
            error_reason=event.error_reason,
            session=SessionInfo.from_pb(event.session) if event.HasField("session") else None,
            prev_hash=_hash(event.prev_hash, "prev_hash"),
            hash=_hash(event.hash, "hash"),
        )


@dataclass(frozen=True)
class WatchProgress:
    """Every change up to ``revision`` has been delivered: a watch started
    after it misses nothing."""

    revision: int


@dataclass(frozen=True)
class InitialStateEnd:
    """The initial state's snapshots have all been delivered; the changes
    after ``revision`` follow."""

    revision: int


#: One item of a watch: a change (or a snapshot), progress, or the end of
#: the initial state. Each has a ``revision``.
WatchItem = Union[Event, WatchProgress, InitialStateEnd]


@dataclass(frozen=True)
class EventPage:
    """One page of ``list_events_page``."""

    events: list[Event]
    next_page_token: Optional[str]
    """Pass it to get the next page; ``None`` after the last one."""
    compact_revision: int
    """Events up to this revision were compacted away (0: none were)."""

    @classmethod
    def from_pb(cls, response: audit_service_pb2.ListEventsResponse) -> EventPage:
        """Decodes ``ListEventsResponse``."""
        return cls(
            events=[Event.from_pb(event) for event in response.events],
            next_page_token=response.next_page_token or None,
            compact_revision=response.compact_revision,
        )


@dataclass(frozen=True)
class LedgerVerification:
    """What ``verify_ledger`` found; true when the chain holds."""

    ok: bool
    verified_events: int
    first_bad_revision: Optional[int]
    """The first revision found altered, missing or out of chain."""
    problem: str
    """What is wrong there, in words; empty when ok."""
    head_revision: int
    head_hash: bytes

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def from_pb(cls, response: audit_service_pb2.VerifyLedgerResponse) -> LedgerVerification:
        """Decodes ``VerifyLedgerResponse``."""
        return cls(
            ok=response.ok,
            verified_events=response.verified_events,
            first_bad_revision=response.first_bad_revision or None,
            problem=response.problem,
            head_revision=response.head_revision,
            head_hash=response.head_hash,
        )


@dataclass(frozen=True)
class Checkpoint:
    """The log's head and its compaction checkpoint, to keep elsewhere and
    compare later."""

    head_revision: int
    head_hash: bytes
    compact_revision: int
    """Events up to this revision were compacted away (0: none were)."""
    compact_hash: bytes

    @classmethod
    def from_pb(cls, response: audit_service_pb2.GetCheckpointResponse) -> Checkpoint:
        """Decodes ``GetCheckpointResponse``."""
        return cls(
            head_revision=response.head_revision,
            head_hash=response.head_hash,
            compact_revision=response.compact_revision,
            compact_hash=response.compact_hash,
        )
