"""``sessiond.Client``: every unary RPC against a real server, with the
errors each is documented to raise."""

from __future__ import annotations

import datetime

import pytest

import sessiond
from sessiond import EndReason, Permission, SessionKind, SessionState

from .servers import Server, unique_user

UNKNOWN_SESSION = 2**62


def test_interactive_sessions_start_touch_and_end(client: sessiond.Client) -> None:
    user = unique_user("R41")
    started = client.start_session(user, client="web/2.3")
    assert started.kind is SessionKind.INTERACTIVE
    assert started.state is SessionState.OPEN
    assert started.client == "web/2.3"
    touched = client.touch_session(started.session_id)
    assert touched >= started.last_activity_time
    ended = client.end_session(started.session_id)
    assert ended.state is SessionState.ENDED
    assert ended.end_reason is EndReason.CLOSED_BY_CLIENT
    assert client.end_session(started.session_id) == ended, "idempotent"
    with pytest.raises(sessiond.SessionEndedError) as raised:
        client.touch_session(started.session_id)
    assert raised.value.session_id == started.session_id


def test_list_sessions_filters_and_pages(client: sessiond.Client) -> None:
    user = unique_user("R41")
    opened = [client.open_clientless_session(user) for _ in range(3)]
    client.close_clientless_session(opened[0].session_id)
    every = client.list_sessions(user=user)
    assert [s.session_id for s in every] == [s.session_id for s in opened]
    still_open = client.list_sessions(user=user, state=SessionState.OPEN)
    assert [s.session_id for s in still_open] == [s.session_id for s in opened[1:]]
    assert client.list_sessions(user=user, kind=SessionKind.INTERACTIVE) == []
    either = client.list_sessions(user=user, states=[SessionState.ENDED, SessionState.OPEN])
    assert [s.session_id for s in either] == [s.session_id for s in opened]
    ended = client.list_sessions(user=user, states=[SessionState.ENDED])
    assert [s.session_id for s in ended] == [opened[0].session_id]
    first = client.list_sessions_page(user=user, page_size=2)
    assert len(first.sessions) == 2 and first.next_page_token is not None
    second = client.list_sessions_page(user=user, page_size=2, page_token=first.next_page_token)
    assert [s.session_id for s in second.sessions] == [opened[2].session_id]
    assert second.next_page_token is None
    for session in opened[1:]:
        client.close_clientless_session(session.session_id)


def test_clientless_sessions_run_modules_and_close_gracefully(client: sessiond.Client) -> None:
    user = unique_user("R41")
    with client.clientless_session(user) as session:
        run = session.open_module("100000", title="T")
        assert run.state in (sessiond.RunState.RUNNING, sessiond.RunState.SUCCEEDED)
        assert run.acting_user == user
        assert isinstance(run.start_time, datetime.datetime)
        assert session.get_return_value("100000", timeout=10)["title"] == "T"
        assert client.get_session_info(session.session_id).state is SessionState.OPEN
    assert session.info.state is SessionState.ENDED
    # Closing again is idempotent.
    assert client.close_clientless_session(session.session_id).state is SessionState.ENDED


def test_module_values_keep_json_types(client: sessiond.Client) -> None:
    with client.clientless_session(unique_user("R41")) as session:
        session.open_module("100000", title=None)
        data = session.get_return_value("100000", timeout=10)
    assert data["title"] is None
    assert isinstance(data["session_id"], int), "integral numbers come back as int"


def test_module_errors_are_typed(client: sessiond.Client) -> None:
    with client.clientless_session(unique_user("R41")) as session:
        with pytest.raises(sessiond.UnknownModuleError) as unknown:
            session.open_module("no-such-module")
        assert unknown.value.module_id == "no-such-module"
        with pytest.raises(sessiond.ModuleNotOpenedError) as never:
            session.get_return_value("whoami")
        assert never.value.module_id == "whoami"
        assert never.value.session_id == session.session_id
        session.open_module("slow", seconds=30)
        with pytest.raises(sessiond.ModuleStillRunningError) as running:
            session.get_return_value("slow", timeout=0.1)
        assert running.value.run_id is not None
        with pytest.raises(sessiond.InvalidArgumentError):
            client.open_module(session.session_id, "slow", ["not", "an", "object"])  # type: ignore[arg-type]
        closing = client.with_timeout(60).close_clientless_session(session.session_id, grace=0.2)
        assert closing.state is SessionState.ENDED
    with pytest.raises(sessiond.ModuleFailedError) as cancelled:
        client.get_return_value(session.session_id, "slow")
    assert cancelled.value.state is sessiond.RunState.CANCELLED
    with pytest.raises(sessiond.SessionEndedError):
        client.open_module(session.session_id, "whoami")


def test_clientless_operations_on_an_interactive_session_are_refused(client: sessiond.Client) -> None:
    session = client.start_session(unique_user("R41"))
    with pytest.raises(sessiond.SessionNotClientlessError) as raised:
        client.open_module(session.session_id, "whoami")
    assert raised.value.code is not None and raised.value.code.name == "FAILED_PRECONDITION"
    client.end_session(session.session_id)


def test_invalid_arguments_name_their_fields(client: sessiond.Client) -> None:
    with pytest.raises(sessiond.InvalidArgumentError) as raised:
        client.open_clientless_session("   ")
    assert [v.field for v in raised.value.violations] == ["user"]
    with pytest.raises(sessiond.InvalidArgumentError) as zero:
        client.get_session_user(0)
    assert zero.value.violations and zero.value.violations[0].field == "session_id"
    with pytest.raises(sessiond.InvalidArgumentError) as local:
        client.get_session_user("R41")  # type: ignore[arg-type]
    assert local.value.code is None, "refused before sending"


def test_session_ids_may_be_given_as_digit_strings(client: sessiond.Client) -> None:
    session = client.open_clientless_session(unique_user("R41"))
    assert client.get_session_user(str(session.session_id)) == session.user  # type: ignore[arg-type]
    client.close_clientless_session(session.session_id)


def test_user_context_scopes_push_pop_and_refuse_out_of_order(client: sessiond.Client) -> None:
    user = unique_user("SYSTEM")
    with client.clientless_session(user) as session:
        sid = session.session_id
        assert client.get_user_context(sid) == sessiond.UserContextInfo(user, user, 0)
        with client.user_context(sid, "R41") as outer:
            assert outer.previous_user == user
            inner = client.push_user_context(sid, "R42")
            assert inner.depth == 2 and inner.previous_user == "R41"
            with pytest.raises(sessiond.ScopeNotInnermostError) as raised:
                outer.restore()
            assert raised.value.scope_id == outer.scope_id
            assert raised.value.innermost_scope_id == inner.scope_id
            popped = client.pop_user_context(sid, inner.scope_id)
            assert popped == sessiond.PoppedScope("R41", 1)
            with pytest.raises(sessiond.ScopeNotFoundError):
                client.pop_user_context(sid, inner.scope_id)
            assert client.set_user_context(sid, "R43") == "R41"
        assert client.get_user_context(sid).user == user
        with session.user_context("R44"):
            assert client.get_user_context(sid).user == "R44"


def test_access_and_audit_calls(client: sessiond.Client) -> None:
    me = client.who_am_i()
    assert me.subject == "anonymous"
    assert me.method is sessiond.AuthenticationMethod.NONE
    decision = client.check_access(Permission.ACT_AS, session_id=UNKNOWN_SESSION, user="R41")
    assert isinstance(decision.allowed, bool)
    user = unique_user("R41")
    with client.clientless_session(user) as session:
        pass
    events = list(client.list_events(session_id=session.session_id))
    kinds = [event.kind for event in events]
    assert kinds[0] is sessiond.EventKind.CLIENTLESS_SESSION_OPENED
    assert kinds[-1] is sessiond.EventKind.SESSION_ENDED
    assert all(event.user == user and event.hash is not None for event in events)
    assert [e.revision for e in events] == sorted(e.revision for e in events)
    newest = client.list_events_page(session_id=session.session_id, newest_first=True, page_size=1)
    assert newest.events[0].revision == events[-1].revision and newest.next_page_token
    ended = list(client.list_events(user=user, kinds=[sessiond.EventKind.SESSION_ENDED]))
    assert [e.end_reason for e in ended] == [EndReason.CLOSED_BY_CLIENT]
    verification = client.verify_ledger()
    assert verification and verification.first_bad_revision is None
    checkpoint = client.get_checkpoint()
    assert checkpoint.head_revision >= events[-1].revision and len(checkpoint.head_hash) == 32


def test_a_wait_is_added_to_the_deadline(client: sessiond.Client) -> None:
    with client.clientless_session(unique_user("R41")) as session:
        session.open_module("slow", seconds=1)
        # The deadline (0.5 s) is shorter than the run; the wait extends it.
        value = client.with_timeout(0.5).get_return_value(session.session_id, "slow", timeout=10)
    assert value == "done"


def test_an_unreachable_server_is_unavailable_after_the_retries() -> None:
    # A port nothing listens on: every attempt of a read fails.
    with sessiond.Client(
        "127.0.0.1:1", retry=sessiond.RetryPolicy(max_attempts=2, initial_backoff=0.01)
    ) as client:
        with pytest.raises(sessiond.UnavailableError) as raised:
            client.get_session_user(1)
    assert raised.value.reason is None


def test_endpoints_are_parsed_like_sessionctls(server: Server) -> None:
    for endpoint in (server.endpoint, server.url, server.url + "/"):
        with sessiond.Client(endpoint) as client:
            assert client.who_am_i().subject == "anonymous"
    with pytest.raises(sessiond.ConfigurationError):
        sessiond.Client("ftp://127.0.0.1:1")
    with pytest.raises(sessiond.ConfigurationError):
        sessiond.Client(server.url, tls=sessiond.TlsSettings())
