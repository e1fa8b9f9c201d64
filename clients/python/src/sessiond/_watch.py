"""Where a watch is, for the sync and the asyncio watch alike: the last
revision it delivered and the initial state while it arrives. It says what
to ask for on (re)connecting and filters what a connection delivers, so that
a resumed watch neither misses nor repeats a change (the Rust client's
``watch::Position``)."""

from __future__ import annotations

from typing import Optional

import grpc

from .errors import (
    FieldViolation,
    InvalidArgumentError,
    InvalidResponseError,
    ServerShuttingDownError,
    SessiondError,
    WatchTooSlowError,
)
from .events import Event, EventKind, InitialStateEnd, WatchItem, WatchProgress
from .v1 import session_service_pb2 as sessions_pb


class WatchPosition:
    """A watch's filters, starting point and progress."""

    def __init__(
        self,
        *,
        after_revision: int,
        user: Optional[str],
        session_id: Optional[int],
        initial_state: bool,
    ) -> None:
        if initial_state and after_revision:
            # The server refuses the pair too; said here before anything is sent.
            raise InvalidArgumentError(
                "an initial state is sent only to a watch from now (after_revision 0)",
                violations=[FieldViolation("send_initial_state", "only with after_revision 0")],
            )
        self.after_revision = after_revision
        self.user = user
        self.session_id = session_id
        # The last revision delivered (an event, progress or the initial
        # state's end): every change up to it was delivered or did not
        # match. None until the first.
        self.seen: Optional[int] = None
        # The initial state's snapshots received so far, held until its end
        # arrives (so that an interrupted initial state is asked for again
        # whole, never delivered twice in part); None once delivered, or when
        # not asked for.
        self.initial: Optional[list[Event]] = [] if initial_state else None

    def request(self) -> sessions_pb.WatchSessionsRequest:
        """The request of the next connection: after the last revision
        delivered; before any, the initial state if it was asked for (and is
        not delivered), else the requested start."""
        if self.seen is not None:
            after, initial = self.seen, False
        else:
            after, initial = self.after_revision, self.initial is not None
        return sessions_pb.WatchSessionsRequest(
            after_revision=after,
            user=self.user or "",
            session_id=self.session_id or 0,
            send_initial_state=initial,
        )

    def receive(self, response: sessions_pb.WatchSessionsResponse) -> list[WatchItem]:
        """Takes one message of the server; returns what to deliver now.

        Raises:
            InvalidResponseError: for a message out of the contract's order.
        """
        which = response.WhichOneof("message")
        if which is None:
            raise InvalidResponseError("a watch response without a message")
        if self.initial is not None:
            if which == "event":
                event = Event.from_pb(response.event)
                if event.kind is not EventKind.SESSION_SNAPSHOT:
                    raise InvalidResponseError("a change arrived before the initial state's end")
                self.initial.append(event)
                return []
            if which == "initial_state_end":
                revision = response.initial_state_end.revision
                ready: list[WatchItem] = list(self.initial)
                ready.append(InitialStateEnd(revision))
                self.initial = None
                self.seen = revision
                return ready
            raise InvalidResponseError("progress arrived before the initial state's end")
        if which == "event":
            event = Event.from_pb(response.event)
            if self.seen is not None and event.revision <= self.seen:
                return []  # delivered already, by the connection before this one
            self.seen = event.revision
            return [event]
        if which == "progress":
            revision = response.progress.revision
            self.seen = revision if self.seen is None else max(self.seen, revision)
            return [WatchProgress(revision)]
        raise InvalidResponseError("an initial state's end arrived without an initial state")

    def interrupted(self, error: SessiondError) -> None:
        """Notes that the connection ended with ``error``: a partly received
        initial state is dropped (it will be asked for again), and the
        revision a resumable status names (everything up to it was sent)
        becomes the resume point."""
        if self.initial is not None:
            self.initial.clear()
            return
        if isinstance(error, (WatchTooSlowError, ServerShuttingDownError)):
            named = error.revision
            if named is not None and named > 0:
                self.seen = named if self.seen is None else max(self.seen, named)


def may_resume(error: SessiondError) -> bool:
    """Whether a watch that ended with ``error`` may be resumed: any
    ``UNAVAILABLE`` (a status the server chose, or a lost connection)."""
    return bool(error.code == grpc.StatusCode.UNAVAILABLE)
