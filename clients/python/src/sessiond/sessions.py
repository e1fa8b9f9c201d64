"""Sessions: their record (:class:`SessionInfo`, the seed's ``SessionInfo``
with its Java-style getters), kind, state and end reason, and a page of a
listing."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Optional

from . import _wire
from ._enums import ContractEnum
from .errors import InvalidResponseError
from .v1 import session_pb2


class SessionKind(ContractEnum):
    """Who drives a session (the contract's ``SessionKind``)."""

    INTERACTIVE = 1
    """A client logged in (``StartSession`` … ``EndSession``)."""
    CLIENTLESS = 2
    """Headless, opened on behalf of a user to run modules."""


class SessionState(ContractEnum):
    """Where a session is in its life: ``OPEN`` → ``CLOSING`` → ``ENDED``."""

    OPEN = 1
    CLOSING = 2
    """Clientless only: closing; no new modules, running ones conclude."""
    ENDED = 3


class EndReason(ContractEnum):
    """Why a session ended (the seed's unused ``getReason()``)."""

    CLOSED_BY_CLIENT = 1
    IDLE_TIMEOUT = 2
    MAX_LIFETIME = 3
    SERVER_SHUTDOWN = 4
    SERVER_RESTART = 5
    NODE_LOST = 6


@dataclass(frozen=True)
class SessionInfo:
    """The record of one session (the seed's ``SessionInfo``; a row of its
    "DT 443").

    The seed's getters are here with the seed's meaning: :meth:`getUser`,
    :meth:`getTimeStamp` (the last activity, which the seed left unused),
    :meth:`getSessionUUID`, :meth:`getStartTime`, :meth:`getEndTime`
    (``None`` while the session has not ended) and :meth:`getReason` (why it
    ended, ``None`` while it has not). Times are aware ``datetime`` objects
    in UTC.
    """

    session_id: int
    """The numeric id, > 0."""
    session_uuid: uuid.UUID
    """The session's unique UUID."""
    user: str
    """The user the session belongs to; never changes."""
    kind: SessionKind
    state: SessionState
    start_time: datetime.datetime
    end_time: Optional[datetime.datetime]
    """When the session ended; ``None`` while it has not."""
    last_activity_time: datetime.datetime
    """The last time the session was used."""
    end_reason: Optional[EndReason]
    """Why the session ended; ``None`` while it has not."""
    effective_user: str
    """The user work in the session acts as now (its user context)."""
    client: str
    """The client that started an interactive session; empty for clientless."""
    user_context_depth: int
    """How many user-context scopes are open."""
    owner_node: str
    """The replica that owns the session."""

    @property
    def time_stamp(self) -> datetime.datetime:
        """The seed's ``getTimeStamp()``: the last activity time."""
        return self.last_activity_time

    @property
    def reason(self) -> Optional[EndReason]:
        """The seed's ``getReason()``: why the session ended."""
        return self.end_reason

    # The seed's names (Jython's getters).

    def getUser(self) -> str:  # noqa: N802 - the seed's name
        """The user the session belongs to (as ``get_session_user``)."""
        return self.user

    def getTimeStamp(self) -> datetime.datetime:  # noqa: N802 - the seed's name
        """The last time the session was used."""
        return self.last_activity_time

    def getSessionUUID(self) -> uuid.UUID:  # noqa: N802 - the seed's name
        """The UUID that identifies the session's record."""
        return self.session_uuid

    def getStartTime(self) -> datetime.datetime:  # noqa: N802 - the seed's name
        """When the session started."""
        return self.start_time

    def getEndTime(self) -> Optional[datetime.datetime]:  # noqa: N802 - the seed's name
        """When the session ended, or ``None`` if it has not ended yet."""
        return self.end_time

    def getReason(self) -> Optional[EndReason]:  # noqa: N802 - the seed's name
        """Why the session ended, or ``None`` if it has not ended yet."""
        return self.end_reason

    @classmethod
    def from_pb(cls, record: session_pb2.SessionInfo) -> SessionInfo:
        """Decodes the contract's record.

        Raises:
            InvalidResponseError: when it breaks the contract.
        """
        if record.session_id <= 0:
            raise InvalidResponseError(f"session_id {record.session_id} is not > 0")
        return cls(
            session_id=record.session_id,
            session_uuid=_wire.to_uuid(record.session_uuid, "session_uuid"),
            user=record.user,
            kind=SessionKind.required(record.kind, "kind"),
            state=SessionState.required(record.state, "state"),
            start_time=_wire.required_datetime(record, "start_time"),
            end_time=_wire.optional_datetime(record, "end_time"),
            last_activity_time=_wire.required_datetime(record, "last_activity_time"),
            end_reason=EndReason.from_wire(record.end_reason),
            effective_user=record.effective_user,
            client=record.client,
            user_context_depth=record.user_context_depth,
            owner_node=record.owner_node,
        )

    @classmethod
    def from_response(cls, response: object) -> SessionInfo:
        """The ``session`` field of a response, which the contract always
        sets."""
        if not response.HasField("session"):  # type: ignore[attr-defined]
            raise InvalidResponseError("session is unset")
        return cls.from_pb(response.session)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SessionPage:
    """One page of ``list_sessions_page``."""

    sessions: list[SessionInfo]
    """The sessions of this page, in ascending id order."""
    next_page_token: Optional[str]
    """Pass it to get the next page; ``None`` after the last one."""
