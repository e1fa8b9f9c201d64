"""``watch_sessions`` against a real server: the initial state, changes in
order, and resuming across a server restart without a gap or a repeat."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiond
from sessiond import EventKind

from .servers import Server, unique_user

# How long a test waits for one item of a watch.
ITEM_TIMEOUT = 20.0


class Reader:
    """Reads a watch on a thread of its own, so that the test can act
    meanwhile (the iterator blocks)."""

    def __init__(self, watch: sessiond.WatchStream) -> None:
        self.watch = watch
        self.items: queue.Queue[object] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for item in self.watch:
                self.items.put(item)
        except sessiond.SessiondError as error:
            self.items.put(error)
        self.items.put(StopIteration())

    def next(self) -> sessiond.WatchItem:
        item = self.items.get(timeout=ITEM_TIMEOUT)
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def next_event(self) -> sessiond.Event:
        while True:
            item = self.next()
            if isinstance(item, sessiond.Event):
                return item

    def events_until(self, kind: EventKind, session_id: int) -> list[sessiond.Event]:
        events = []
        while True:
            event = self.next_event()
            events.append(event)
            if event.kind is kind and event.session_id == session_id:
                return events

    def close(self) -> None:
        self.watch.close()
        self.thread.join(timeout=ITEM_TIMEOUT)


def test_a_watch_sends_the_initial_state_then_each_change_in_order(client: sessiond.Client) -> None:
    user = unique_user("R41")
    already = client.open_clientless_session(user)
    reader = Reader(client.watch_sessions(user=user, initial_state=True))
    try:
        snapshot = reader.next()
        assert isinstance(snapshot, sessiond.Event)
        assert snapshot.kind is EventKind.SESSION_SNAPSHOT
        assert snapshot.session is not None and snapshot.session.session_id == already.session_id
        assert snapshot.hash is None
        end = reader.next()
        assert isinstance(end, sessiond.InitialStateEnd) and end.revision == snapshot.revision
        with client.user_context(already.session_id, "R42"):
            pass
        client.close_clientless_session(already.session_id)
        events = reader.events_until(EventKind.SESSION_ENDED, already.session_id)
        assert [e.kind for e in events] == [
            EventKind.USER_CONTEXT_PUSHED,
            EventKind.USER_CONTEXT_POPPED,
            EventKind.SESSION_ENDED,  # (no SESSION_CLOSING: nothing was running)
        ]
        assert events[0].effective_user == "R42" and events[1].effective_user == user
        assert all(a.revision < b.revision for a, b in zip(events, events[1:]))
        assert events[0].revision > end.revision
        assert reader.watch.last_revision == events[-1].revision
    finally:
        reader.close()


def test_an_idle_watch_sends_progress(client: sessiond.Client) -> None:
    with client.watch_sessions(user=unique_user("nobody")) as watch:
        item = next(watch)
    assert isinstance(item, sessiond.WatchProgress)


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path, "--watch-progress-interval", "1s")
    server.start()
    yield server
    server.stop()


def test_a_watch_resumes_after_a_restart_without_a_gap_or_a_repeat(restartable: Server) -> None:
    patient = sessiond.RetryPolicy(max_attempts=100, initial_backoff=0.05, max_backoff=0.2)
    user = unique_user("R41")
    with restartable.client(retry=patient) as client:
        reader = Reader(client.watch_sessions(user=user))
        try:
            reader.next()  # connected (progress)
            first = client.open_clientless_session(user)
            seen = reader.events_until(EventKind.CLIENTLESS_SESSION_OPENED, first.session_id)
            # The server stops (ending its clientless sessions) and comes back
            # on the same address and database.
            restartable.stop()
            restartable.start()
            client.who_am_i()  # a read, retried until the client is connected again
            second = client.open_clientless_session(user)
            seen += reader.events_until(EventKind.CLIENTLESS_SESSION_OPENED, second.session_id)
        finally:
            reader.close()
        logged = list(client.list_events(user=user))
        client.close_clientless_session(second.session_id)
    revisions = [event.revision for event in seen]
    assert revisions == sorted(set(revisions)), "in order, no repeats"
    assert revisions == [event.revision for event in logged], "every change, no gap"
    ended = [e for e in seen if e.kind is EventKind.SESSION_ENDED]
    assert [e.end_reason for e in ended] == [sessiond.EndReason.SERVER_SHUTDOWN]


def test_a_watch_that_may_not_resume_raises_the_interruption(restartable: Server) -> None:
    with restartable.client(retry=sessiond.RetryPolicy.never()) as client:
        reader = Reader(client.watch_sessions())
        reader.next()
        restartable.stop()
        with pytest.raises(sessiond.UnavailableError):
            while True:
                reader.next()
        restartable.start()


def test_an_initial_state_after_a_revision_is_refused_before_anything_is_sent(
    client: sessiond.Client,
) -> None:
    with pytest.raises(sessiond.InvalidArgumentError):
        client.watch_sessions(after_revision=5, initial_state=True)
