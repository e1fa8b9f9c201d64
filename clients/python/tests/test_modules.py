"""Modules written on the package: inside a module, ``utilities`` acts on
the run's own session through the server that runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiond

from .servers import Server, unique_user


@pytest.fixture(scope="module")
def modules_server(tmp_path_factory: pytest.TempPathFactory, test_modules: Path) -> Iterator[Server]:
    """A server without authentication running the tests' modules."""
    server = Server(tmp_path_factory.mktemp("modules-server"), "--modules", str(test_modules))
    server.start()
    yield server
    server.stop()


def test_module_100000_py_of_the_example_manifest_reads_its_session_through_the_package(
    client: sessiond.Client,
) -> None:
    user = unique_user("ADMIN")
    with client.clientless_session(user) as session:
        run = session.open_module("100000-py", title="Mine", owner="R41")
        assert run.acting_user == user
        data = session.get_return_value("100000-py", timeout=30)
    info = client.get_session_info(session.session_id)
    assert data["module"] == "100000-py"
    assert data["session_id"] == session.session_id
    assert data["session_uuid"] == str(info.session_uuid)
    assert data["user"] == user
    assert data["acting_user"] == user
    assert data["title"] == "Mine"
    assert data["started"] == info.start_time.isoformat()
    # The rows were made inside `with utilities.UserContext('R41'):` ...
    assert [row["owner"] for row in data["rows"]] == ["R41", "R41"]
    # ... and leaving the block restored the user context.
    assert data["acting_user_after"] == user


def test_a_module_uses_the_seeds_user_context_calls_on_its_own_session(
    modules_server: Server,
) -> None:
    with modules_server.client() as client:
        user = unique_user("SYSTEM")
        with client.clientless_session(user) as session:
            session.open_module("seed-api", act_as="R41", set="R43")
            seen = session.get_return_value("seed-api", timeout=30)
            assert client.get_user_context(session.session_id).user == user
    assert seen["session_id"] == session.session_id
    assert seen["method"] == "none"  # no authentication on this server
    assert (seen["before"], seen["inside"], seen["after_set"], seen["after"]) == (user, "R41", "R43", user)
    assert seen["session_user"] == user


def test_a_failing_module_raises_module_failed_error_with_its_failure(
    modules_server: Server,
) -> None:
    with modules_server.client() as client:
        with client.clientless_session(unique_user("R41")) as session:
            session.open_module("broken")
            with pytest.raises(sessiond.ModuleFailedError) as raised:
                session.get_return_value("broken", timeout=10)
    error = raised.value
    assert error.state is sessiond.RunState.FAILED
    assert error.failure.kind is sessiond.ModuleFailureKind.EXIT_STATUS
    assert error.failure.exit_code == 4
    assert "disk full" in error.failure.stderr_tail
    assert error.module_id == "broken" and error.session_id == session.session_id
