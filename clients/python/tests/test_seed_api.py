"""``sessiond.utilities``: the seed's names with the seed's meaning, against
a real server."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator

import pytest

import sessiond
from sessiond import utilities

from .servers import Server, unique_user

UNKNOWN_SESSION = 2**62


@pytest.fixture
def connected(server: Server) -> Iterator[Server]:
    """``utilities`` connected to ``server``, outside any module."""
    utilities.connect(server.endpoint)
    yield server


@pytest.fixture
def current_session(connected: Server) -> Iterator[int]:
    """A clientless session opened for SYSTEM, made the current session."""
    session_id = utilities.open_clientless_session(unique_user("SYSTEM"))
    utilities.connect(connected.endpoint, session_id=session_id)
    yield session_id
    utilities.close_clientless_session(session_id)


def test_the_seeds_first_example_runs_module_100000_and_closes_the_session(connected: Server) -> None:
    user = unique_user("R41")
    with utilities.ClientlessSession(user) as session:
        session.open_module(module_id="100000")
        data = session.get_return_value(module_id="100000", timeout=5)
        assert utilities.get_session_info(session.session_id).getEndTime() is None
    assert data["module"] == "100000"
    assert data["user"] == user
    assert data["rows"][0]["owner"] == user
    ended = utilities.get_session_info(session.session_id)
    assert ended.getEndTime() is not None
    assert ended.getReason() is sessiond.EndReason.CLOSED_BY_CLIENT


def test_open_module_passes_keyword_parameters_to_the_module(connected: Server) -> None:
    with utilities.ClientlessSession(unique_user("R41")) as session:
        session.open_module(module_id="100000", title="Open projects")
        data = session.get_return_value(module_id="100000", timeout=5)
    assert data["title"] == "Open projects"


def test_a_clientless_session_is_closed_when_its_block_raises_after_its_modules_concluded(
    connected: Server,
) -> None:
    with pytest.raises(RuntimeError, match="in the block"):
        with utilities.ClientlessSession(unique_user("R41")) as session:
            session.open_module(module_id="slow", seconds=1)
            raise RuntimeError("in the block")
    record = utilities.get_session_info(session.session_id)
    assert record.getReason() is sessiond.EndReason.CLOSED_BY_CLIENT
    # The running module concluded first: it was not cancelled.
    assert utilities.client().get_return_value(session.session_id, "slow") == "done"


def test_session_info_has_the_seeds_getters_and_snake_case_properties(connected: Server) -> None:
    user = unique_user("R41")
    session_id = utilities.open_clientless_session(user)
    assert isinstance(session_id, int)
    assert utilities.get_session_user(session_id) == user
    info = utilities.get_session_info(session_id)
    assert info.getUser() == info.user == user
    assert isinstance(info.getSessionUUID(), uuid.UUID)
    assert info.getSessionUUID() == info.session_uuid
    start = info.getStartTime()
    assert isinstance(start, datetime.datetime) and start.tzinfo is not None
    assert abs(datetime.datetime.now(datetime.timezone.utc) - start) < datetime.timedelta(minutes=1)
    assert info.getTimeStamp() == info.time_stamp == info.last_activity_time
    assert info.getEndTime() is None and info.end_time is None
    assert info.getReason() is None and info.reason is None
    utilities.close_clientless_session(session_id)
    ended = utilities.get_session_info(session_id)
    end = ended.getEndTime()
    assert end is not None and end >= start
    assert ended.reason is sessiond.EndReason.CLOSED_BY_CLIENT
    # Whose session it was is answered after it ended too.
    assert utilities.get_session_user(session_id) == user


@pytest.mark.parametrize(
    "call",
    [
        utilities.get_session_user,
        utilities.get_session_info,
        utilities.close_clientless_session,
    ],
)
def test_an_unknown_session_raises_session_not_found_exception(connected: Server, call: object) -> None:
    with pytest.raises(utilities.SessionNotFoundException) as raised:
        call(UNKNOWN_SESSION)  # type: ignore[operator]
    error = raised.value
    assert isinstance(error, sessiond.SessionNotFoundError)
    assert isinstance(error, sessiond.SessiondError)
    assert error.reason == "SESSION_NOT_FOUND"
    assert error.session_id == UNKNOWN_SESSION


def test_user_context_restores_exactly_what_was_there_nested_and_after_a_set(current_session: int) -> None:
    assert utilities.get_user_context().startswith("SYSTEM")
    before = utilities.get_user_context()
    with utilities.UserContext("R41"):
        assert utilities.get_user_context() == "R41"
        with utilities.UserContext("R42"):
            assert utilities.get_user_context() == "R42"
        assert utilities.get_user_context() == "R41"
        utilities.set_user_context("R43")
        assert utilities.get_user_context() == "R43"
    # Leaving the block restores the value from before it, the set included.
    assert utilities.get_user_context() == before
    utilities.set_user_context("R44")
    assert utilities.get_user_context() == "R44"


def test_user_context_is_restored_when_its_block_raises(current_session: int) -> None:
    before = utilities.get_user_context()
    with pytest.raises(KeyError):
        with utilities.UserContext("R41"):
            raise KeyError("in the block")
    assert utilities.get_user_context() == before


def test_user_context_functions_need_a_current_session(connected: Server) -> None:
    with pytest.raises(sessiond.ConfigurationError, match="no current session"):
        utilities.get_user_context()
    with pytest.raises(sessiond.ConfigurationError):
        utilities.set_user_context("R41")
    with pytest.raises(sessiond.ConfigurationError):
        utilities.UserContext("R41")


def test_the_environment_names_the_server_and_the_current_session(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server.client() as client:
        session_id = client.open_clientless_session(unique_user("R41")).session_id
        try:
            monkeypatch.setenv("SESSIOND_ENDPOINT", server.url)
            monkeypatch.setenv("SESSIOND_SESSION_ID", str(session_id))
            assert utilities.current_session_id() == session_id
            with utilities.UserContext("R42"):
                assert client.get_user_context(session_id).user == "R42"
        finally:
            client.close_clientless_session(session_id)


def test_connect_replaces_the_client_and_session(server: Server) -> None:
    first = utilities.connect(server.endpoint, session_id=7)
    assert utilities.client() is first
    assert utilities.current_session_id() == 7
    second = utilities.connect(server.url)
    assert utilities.client() is second
    with pytest.raises(sessiond.ConfigurationError):
        utilities.current_session_id()
