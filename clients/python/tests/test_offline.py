"""What needs no server: the error hierarchy and the enums against the
generated contract, the decoding of statuses, retries and deadlines over a
scripted channel, where a watch resumes, and JSON values on the wire."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any, Optional, cast

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

import sessiond
from sessiond import _wire, utilities
from sessiond._enums import ContractEnum
from sessiond._watch import WatchPosition
from sessiond.errors import ERROR_CLASSES, from_rpc_error
from sessiond.v1 import (
    access_service_pb2,
    error_reason_pb2,
    event_pb2,
    session_pb2,
    session_service_pb2 as sessions_pb,
)


class ScriptedError(grpc.RpcError):
    """A failed call as grpcio raises it: a code, a message, trailers."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str = "",
        reason: Optional[str] = None,
        metadata: Optional[dict[str, str]] = None,
        violations: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._code = code
        self._message = message
        status = status_pb2.Status(code=code.value[0], message=message)
        if reason is not None:
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="sessiond", metadata=metadata or {}))
            status.details.append(info)
        if violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
                ]
            )
            detail = any_pb2.Any()
            detail.Pack(bad)
            status.details.append(detail)
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),) if status.details else ()

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> Any:
        return self._trailers


class ScriptedChannel:
    """A channel whose unary calls answer from a script and record how they
    were made."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.calls: list[tuple[str, Any, Optional[float], Any]] = []

    def unary_unary(self, path: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        name = path.rsplit("/", 1)[-1]

        def call(request: Any, timeout: Optional[float] = None, metadata: Any = None) -> Any:
            self.calls.append((name, request, timeout, metadata))
            outcome = self.script[name].pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        return call

    def unary_stream(self, path: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return lambda *a, **k: iter(())

    def close(self) -> None:
        pass


def scripted_client(**settings: Any) -> tuple[sessiond.Client, ScriptedChannel]:
    channel = ScriptedChannel()
    settings.setdefault("retry", sessiond.RetryPolicy(initial_backoff=0.001, max_backoff=0.002))
    return sessiond.Client.from_channel(cast(grpc.Channel, channel), **settings), channel


def session_record(session_id: int = 7, user: str = "R41") -> session_pb2.SessionInfo:
    record = session_pb2.SessionInfo(
        session_id=session_id,
        session_uuid="01939d2a-3c4b-7def-8123-456789abcdef",
        user=user,
        kind=session_pb2.SESSION_KIND_CLIENTLESS,
        state=session_pb2.SESSION_STATE_OPEN,
        effective_user=user,
    )
    record.start_time.FromDatetime(datetime.datetime(2026, 12, 1, 12, 0, 0))
    record.last_activity_time.FromDatetime(datetime.datetime(2026, 12, 1, 12, 0, 1))
    return record


# The contract ------------------------------------------------------------------


def test_every_reason_of_the_contract_has_its_class_and_no_other() -> None:
    contract = {
        name.removeprefix("ERROR_REASON_")
        for name in error_reason_pb2.ErrorReason.keys()
        if name != "ERROR_REASON_UNSPECIFIED"
    }
    assert set(ERROR_CLASSES) == contract
    for reason, cls in ERROR_CLASSES.items():
        assert issubclass(cls, sessiond.SessiondError) and cls.REASON == reason
        assert getattr(sessiond, cls.__name__) is cls, "exported"


@pytest.mark.parametrize(
    ("enum", "descriptor"),
    [
        (sessiond.SessionKind, session_pb2.SessionKind),
        (sessiond.SessionState, session_pb2.SessionState),
        (sessiond.EndReason, session_pb2.EndReason),
        (sessiond.RunState, session_pb2.RunState),
        (sessiond.ModuleFailureKind, session_pb2.ModuleFailureKind),
        (sessiond.EventKind, event_pb2.EventKind),
        (sessiond.AuthenticationMethod, access_service_pb2.AuthenticationMethod),
        (sessiond.Permission, access_service_pb2.Permission),
    ],
)
def test_each_enum_is_the_contracts(enum: type[ContractEnum], descriptor: Any) -> None:
    contract = {name: number for name, number in descriptor.items() if number != 0}
    assert {member.wire_name: member.value for member in enum} == contract


def test_the_seeds_exception_is_the_hierarchys() -> None:
    assert utilities.SessionNotFoundException is sessiond.SessionNotFoundError
    for name in ("SessionNotFoundError", "PermissionDeniedError", "ModuleFailedError"):
        assert getattr(sessiond.utilities, name) is getattr(sessiond, name)


# Decoding ------------------------------------------------------------------------


def test_statuses_decode_into_their_reasons_class_with_typed_metadata() -> None:
    error = from_rpc_error(
        ScriptedError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "scope 4 is not the innermost",
            "SCOPE_NOT_INNERMOST",
            {"session_id": "7", "scope_id": "4", "innermost_scope_id": "5"},
        )
    )
    assert isinstance(error, sessiond.ScopeNotInnermostError)
    assert (error.session_id, error.scope_id, error.innermost_scope_id) == (7, 4, 5)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert str(error) == "scope 4 is not the innermost"

    denied = from_rpc_error(
        ScriptedError(
            grpc.StatusCode.PERMISSION_DENIED,
            "no",
            "PERMISSION_DENIED",
            {"permission": "act_as", "subject": "billing", "user": "admin"},
        )
    )
    assert isinstance(denied, sessiond.PermissionDeniedError)
    assert (denied.permission, denied.subject, denied.user) == ("act_as", "billing", "admin")

    for reason in ("STORE_UNAVAILABLE", "OWNER_UNAVAILABLE", "WATCH_TOO_SLOW", "SERVER_SHUTTING_DOWN"):
        unavailable = from_rpc_error(ScriptedError(grpc.StatusCode.UNAVAILABLE, "", reason))
        assert isinstance(unavailable, sessiond.UnavailableError), reason


def test_ids_the_server_did_not_name_come_from_the_request() -> None:
    subject = sessiond.errors.RequestSubject(session_id=9, module_id="m")
    error = from_rpc_error(ScriptedError(grpc.StatusCode.NOT_FOUND, "", "MODULE_NOT_OPENED"), subject)
    assert isinstance(error, sessiond.ModuleNotOpenedError)
    assert (error.session_id, error.module_id) == (9, "m")


def test_bad_requests_list_their_field_violations() -> None:
    error = from_rpc_error(
        ScriptedError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid",
            "INVALID_ARGUMENT",
            violations=[("user", "is blank"), ("session_id", "must be > 0")],
        )
    )
    assert isinstance(error, sessiond.InvalidArgumentError)
    assert error.violations == [
        sessiond.FieldViolation("user", "is blank"),
        sessiond.FieldViolation("session_id", "must be > 0"),
    ]


def test_a_reason_this_version_does_not_know_is_a_plain_error_of_its_code() -> None:
    error = from_rpc_error(ScriptedError(grpc.StatusCode.ABORTED, "new", "SOMETHING_NEWER"))
    assert type(error) is sessiond.SessiondError
    assert (error.code, error.reason) == (grpc.StatusCode.ABORTED, "SOMETHING_NEWER")


def test_statuses_without_a_reason_decode_by_their_code() -> None:
    assert isinstance(
        from_rpc_error(ScriptedError(grpc.StatusCode.DEADLINE_EXCEEDED, "late")),
        sessiond.DeadlineExceededError,
    )
    unavailable = from_rpc_error(ScriptedError(grpc.StatusCode.UNAVAILABLE, "refused"))
    assert type(unavailable) is sessiond.UnavailableError and unavailable.reason is None
    other = from_rpc_error(ScriptedError(grpc.StatusCode.UNIMPLEMENTED, ""))
    assert type(other) is sessiond.SessiondError and other.message == "UNIMPLEMENTED"


# Calls: deadlines, tokens, retries ------------------------------------------------


def test_each_call_has_the_deadline_plus_its_wait_and_the_token() -> None:
    client, channel = scripted_client(token="s3cret", timeout=2.0)
    channel.script["GetSessionUser"] = [sessions_pb.GetSessionUserResponse(user="R41")]
    channel.script["GetReturnValue"] = [
        sessions_pb.GetReturnValueResponse(run_id=1, state=session_pb2.RUN_STATE_SUCCEEDED)
    ]
    assert client.get_session_user(7) == "R41"
    assert client.get_return_value(7, "m", timeout=5) is None
    (_, request, timeout, metadata), (_, wait_request, wait_timeout, _) = channel.calls
    assert request.session_id == 7 and timeout == 2.0
    assert metadata == (("authorization", "Bearer s3cret"),)
    assert wait_timeout == 7.0 and wait_request.timeout.seconds == 5
    assert client.with_timeout(None).timeout is None


def test_reads_are_retried_on_unavailable() -> None:
    client, channel = scripted_client()
    channel.script["GetSessionUser"] = [
        ScriptedError(grpc.StatusCode.UNAVAILABLE, "connection refused"),
        ScriptedError(grpc.StatusCode.UNAVAILABLE, "store", "STORE_UNAVAILABLE"),
        sessions_pb.GetSessionUserResponse(user="R41"),
    ]
    assert client.get_session_user(7) == "R41"
    assert len(channel.calls) == 3


def test_reads_give_up_after_the_policys_attempts() -> None:
    client, channel = scripted_client(retry=sessiond.RetryPolicy(max_attempts=2, initial_backoff=0.001))
    channel.script["GetSessionInfo"] = [ScriptedError(grpc.StatusCode.UNAVAILABLE, "down")] * 3
    with pytest.raises(sessiond.UnavailableError):
        client.get_session_info(7)
    assert len(channel.calls) == 2


def test_writes_are_retried_only_when_the_server_says_nothing_changed() -> None:
    client, channel = scripted_client()
    opened = sessions_pb.OpenClientlessSessionResponse(session=session_record())
    channel.script["OpenClientlessSession"] = [
        ScriptedError(grpc.StatusCode.UNAVAILABLE, "store", "STORE_UNAVAILABLE"),
        opened,
        ScriptedError(grpc.StatusCode.UNAVAILABLE, "connection reset"),
    ]
    assert client.open_clientless_session("R41").session_id == 7
    with pytest.raises(sessiond.UnavailableError):
        client.open_clientless_session("R41")
    assert len(channel.calls) == 3, "the transport failure was not retried"


def test_idempotent_writes_are_retried_on_any_unavailable() -> None:
    client, channel = scripted_client()
    channel.script["CloseClientlessSession"] = [
        ScriptedError(grpc.StatusCode.UNAVAILABLE, "connection reset"),
        sessions_pb.CloseClientlessSessionResponse(session=session_record()),
    ]
    assert client.close_clientless_session(7).session_id == 7


def test_other_failures_are_not_retried() -> None:
    client, channel = scripted_client()
    channel.script["GetSessionUser"] = [
        ScriptedError(grpc.StatusCode.NOT_FOUND, "no", "SESSION_NOT_FOUND", {"session_id": "7"})
    ]
    with pytest.raises(sessiond.SessionNotFoundError):
        client.get_session_user(7)
    assert len(channel.calls) == 1


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = sessiond.RetryPolicy(max_attempts=10, initial_backoff=0.1, max_backoff=0.35)
    for _ in range(50):
        assert 0.05 <= policy.backoff(1) <= 0.1
        assert 0.1 <= policy.backoff(2) <= 0.2
        assert 0.175 <= policy.backoff(30) <= 0.35
    assert sessiond.RetryPolicy.never().max_attempts == 1


def test_a_session_record_has_the_seeds_getters() -> None:
    info = sessiond.SessionInfo.from_pb(session_record())
    assert info.getUser() == "R41"
    assert info.getStartTime() == datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.timezone.utc)
    assert info.getTimeStamp() == info.getStartTime() + datetime.timedelta(seconds=1)
    assert info.getEndTime() is None and info.getReason() is None
    broken = session_record()
    broken.ClearField("start_time")
    with pytest.raises(sessiond.InvalidResponseError, match="start_time"):
        sessiond.SessionInfo.from_pb(broken)


# Where a watch resumes --------------------------------------------------------------


def watch_event(revision: int, kind: int = event_pb2.EVENT_KIND_SESSION_STARTED) -> sessions_pb.WatchSessionsResponse:
    event = event_pb2.Event(revision=revision, kind=kind, session_id=1)  # type: ignore[arg-type]
    event.time.GetCurrentTime()
    return sessions_pb.WatchSessionsResponse(event=event)


def progress(revision: int) -> sessions_pb.WatchSessionsResponse:
    return sessions_pb.WatchSessionsResponse(progress=sessions_pb.WatchProgress(revision=revision))


def initial_state_end(revision: int) -> sessions_pb.WatchSessionsResponse:
    return sessions_pb.WatchSessionsResponse(initial_state_end=sessions_pb.WatchProgress(revision=revision))


def revisions(items: Iterable[sessiond.WatchItem]) -> list[tuple[str, int]]:
    def letter(item: sessiond.WatchItem) -> str:
        if isinstance(item, sessiond.Event):
            return "s" if item.kind is sessiond.EventKind.SESSION_SNAPSHOT else "e"
        return "p" if isinstance(item, sessiond.WatchProgress) else "i"

    return [(letter(item), item.revision) for item in items]


def test_a_watch_from_now_resumes_after_what_it_delivered_and_skips_repeats() -> None:
    position = WatchPosition(after_revision=0, user="R41", session_id=None, initial_state=False)
    first = position.request()
    assert (first.after_revision, first.send_initial_state, first.user) == (0, False, "R41")
    delivered = position.receive(progress(4)) + position.receive(watch_event(5))
    assert position.request().after_revision == 5
    delivered += position.receive(watch_event(5))  # repeated by a new connection: skipped
    delivered += position.receive(watch_event(6))
    assert revisions(delivered) == [("p", 4), ("e", 5), ("e", 6)]
    assert position.request().after_revision == 6


def test_a_watch_that_delivered_nothing_resumes_where_it_was_asked_or_where_the_server_said() -> None:
    position = WatchPosition(after_revision=10, user=None, session_id=None, initial_state=False)
    position.interrupted(sessiond.UnavailableError("gone", code=grpc.StatusCode.UNAVAILABLE))
    assert position.request().after_revision == 10
    now = WatchPosition(after_revision=0, user=None, session_id=None, initial_state=False)
    now.interrupted(sessiond.WatchTooSlowError("slow", metadata={"revision": "17"}))
    assert now.request().after_revision == 17


def test_the_initial_state_is_delivered_whole_and_asked_for_again_when_cut_short() -> None:
    snapshot = event_pb2.EVENT_KIND_SESSION_SNAPSHOT
    position = WatchPosition(after_revision=0, user=None, session_id=None, initial_state=True)
    assert position.request().send_initial_state
    assert position.receive(watch_event(8, snapshot)) == [], "held until its end"
    position.interrupted(sessiond.ServerShuttingDownError("bye", metadata={"revision": "8"}))
    again = position.request()
    assert (again.after_revision, again.send_initial_state) == (0, True)
    delivered = position.receive(watch_event(9, snapshot)) + position.receive(watch_event(9, snapshot))
    delivered += position.receive(initial_state_end(9)) + position.receive(watch_event(10))
    assert revisions(delivered) == [("s", 9), ("s", 9), ("i", 9), ("e", 10)]
    resumed = position.request()
    assert (resumed.after_revision, resumed.send_initial_state) == (10, False)


def test_messages_out_of_the_contracts_order_are_invalid_responses() -> None:
    initial = WatchPosition(after_revision=0, user=None, session_id=None, initial_state=True)
    with pytest.raises(sessiond.InvalidResponseError):
        initial.receive(watch_event(3))
    with pytest.raises(sessiond.InvalidResponseError):
        initial.receive(progress(3))
    plain = WatchPosition(after_revision=0, user=None, session_id=None, initial_state=False)
    with pytest.raises(sessiond.InvalidResponseError):
        plain.receive(initial_state_end(3))
    with pytest.raises(sessiond.InvalidArgumentError):
        WatchPosition(after_revision=3, user=None, session_id=None, initial_state=True)


# JSON values --------------------------------------------------------------------------


def test_json_values_round_trip_with_integers_kept() -> None:
    value = {"n": 5, "x": 2.5, "big": 2**60, "s": "é", "b": True, "none": None, "list": [1, {"a": []}]}
    back = _wire.from_value(_wire.to_value(value))
    assert back["n"] == 5 and isinstance(back["n"], int)
    assert back["x"] == 2.5
    assert isinstance(back["big"], float), "beyond 2**53 a number is a double"
    assert {k: v for k, v in back.items() if k != "big"} == {k: v for k, v in value.items() if k != "big"}
    with pytest.raises(sessiond.InvalidArgumentError):
        _wire.to_value({1, 2})


def test_durations_and_timestamps_convert_exactly() -> None:
    duration = _wire.to_duration(1.25)
    assert (duration.seconds, duration.nanos) == (1, 250_000_000)
    moment = datetime.datetime(2026, 12, 5, 17, 0, 0, 123456, tzinfo=datetime.timezone.utc)
    assert _wire.to_datetime(_wire.to_timestamp(moment)) == moment
