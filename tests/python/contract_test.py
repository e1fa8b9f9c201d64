"""The sessiond contract exercised from Python, against a running server.

Usage: python tests/python/contract_test.py HOST:PORT

Generates Python stubs from ``proto/`` with ``grpc_tools.protoc`` into a
temporary directory (the well-known types resolve from grpc_tools), then
runs the SessionService and UserContextService operations over a real
channel and checks their results and their error details (read with
``grpcio-status``): the gRPC code, the ``google.rpc.ErrorInfo`` (domain
"sessiond", reason, metadata; each reason a value of the generated
``ErrorReason`` without its ``ERROR_REASON_`` prefix) and the
``google.rpc.BadRequest`` field violations.

Every test uses users and sessions of its own, so the program can run
against a server that already holds data. It prints a last line
``N passed, M failed`` and exits non-zero unless every test passed.
Requires grpcio, grpcio-tools and grpcio-status.
"""

import datetime
import os
import sys
import unittest
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import CALL_TIMEOUT, ErrorDetails, unique_user  # noqa: E402

# How far a server timestamp may be from this machine's clock.
CLOCK_SLACK = datetime.timedelta(seconds=60)

# Filled in by main(): the endpoint and the generated modules.
ENDPOINT = None
er_pb = None  # sessiond.v1.error_reason_pb2
pb = None  # sessiond.v1.session_pb2
ss_pb = None  # sessiond.v1.session_service_pb2
ss_grpc = None  # sessiond.v1.session_service_pb2_grpc
uc_pb = None  # sessiond.v1.user_context_service_pb2
uc_grpc = None  # sessiond.v1.user_context_service_pb2_grpc


def set_stubs(stubs):
    """Makes the generated modules this file's globals."""
    global er_pb, pb, ss_pb, ss_grpc, uc_pb, uc_grpc
    er_pb, pb = stubs.er_pb, stubs.pb
    ss_pb, ss_grpc = stubs.ss_pb, stubs.ss_grpc
    uc_pb, uc_grpc = stubs.uc_pb, stubs.uc_grpc


def method_name(multicallable):
    """The name of a stub's method, for test reports."""
    name = getattr(multicallable, "_method", b"?")
    return name.decode() if isinstance(name, bytes) else str(name)


def unknown_session_id():
    """A session id no server has handed out (ids count up from 1)."""
    return 2**62 + uuid.uuid4().int % 2**32


class ContractTest(unittest.TestCase):
    """Base: a channel and both service stubs per test."""

    def setUp(self):
        self.channel = grpc.insecure_channel(ENDPOINT)
        self.addCleanup(self.channel.close)
        grpc.channel_ready_future(self.channel).result(timeout=CALL_TIMEOUT)
        self.sessions = ss_grpc.SessionServiceStub(self.channel)
        self.contexts = uc_grpc.UserContextServiceStub(self.channel)

    # Helpers -------------------------------------------------------------

    def call(self, method, request):
        """Calls a unary method with the test's deadline."""
        return method(request, timeout=CALL_TIMEOUT)

    def assert_fails(self, method, request, code, reason):
        """Asserts that the call fails with `code` and ErrorInfo `reason`."""
        with self.assertRaises(grpc.RpcError) as caught:
            self.call(method, request)
        details = ErrorDetails(caught.exception)
        self.assertEqual(details.code, code, details)
        self.assertIsNotNone(details.error_info, f"no ErrorInfo in {details}")
        self.assertEqual(details.error_info.domain, "sessiond", details)
        self.assertEqual(details.error_info.reason, reason, details)
        # The reason is one of the contract's: ErrorReason's value name
        # without its prefix.
        self.assertIn("ERROR_REASON_" + reason, er_pb.ErrorReason.keys(), details)
        return details

    def open_clientless(self, user):
        return self.call(
            self.sessions.OpenClientlessSession,
            ss_pb.OpenClientlessSessionRequest(user=user),
        )

    def start(self, user, client=""):
        return self.call(
            self.sessions.StartSession,
            ss_pb.StartSessionRequest(user=user, client=client),
        )

    def info(self, session_id):
        return self.call(
            self.sessions.GetSessionInfo,
            ss_pb.GetSessionInfoRequest(session_id=session_id),
        ).session

    def assert_recent(self, timestamp, what):
        """Asserts a Timestamp is set and close to this machine's clock."""
        self.assertTrue(
            timestamp.seconds > 0 or timestamp.nanos > 0, f"{what} is not set"
        )
        when = timestamp.ToDatetime(tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs(now - when), CLOCK_SLACK, f"{what} = {when}, now {now}")

    def kind_name(self, info):
        return pb.SessionKind.Name(info.kind)

    def state_name(self, info):
        return pb.SessionState.Name(info.state)

    def end_reason_name(self, info):
        return pb.EndReason.Name(info.end_reason)


class SessionServiceTest(ContractTest):
    """SessionService: sessions, their records and their errors."""

    def test_clientless_session_open_read_close(self):
        user = unique_user("R41")
        opened = self.open_clientless(user)
        self.assertGreater(opened.session_id, 0)
        self.assertEqual(uuid.UUID(opened.session_uuid).version, 7)
        self.assertEqual(str(uuid.UUID(opened.session_uuid)), opened.session_uuid)
        self.assertEqual(opened.session.session_id, opened.session_id)
        self.assertEqual(opened.session.session_uuid, opened.session_uuid)

        got = self.call(
            self.sessions.GetSessionUser,
            ss_pb.GetSessionUserRequest(session_id=opened.session_id),
        )
        self.assertEqual(got.user, user)

        info = self.info(opened.session_id)
        self.assertEqual(info.session_id, opened.session_id)
        self.assertEqual(info.session_uuid, opened.session_uuid)
        self.assertEqual(info.user, user)
        self.assertEqual(info.effective_user, user)
        self.assertEqual(self.kind_name(info), "SESSION_KIND_CLIENTLESS")
        self.assertEqual(self.state_name(info), "SESSION_STATE_OPEN")
        self.assertEqual(self.end_reason_name(info), "END_REASON_UNSPECIFIED")
        self.assertEqual(info.client, "")
        self.assertEqual(info.user_context_depth, 0)
        self.assertTrue(info.HasField("start_time"))
        self.assert_recent(info.start_time, "start_time")
        self.assertFalse(info.HasField("end_time"), info)
        self.assertTrue(info.HasField("last_activity_time"))
        self.assertGreaterEqual(
            info.last_activity_time.ToNanoseconds(), info.start_time.ToNanoseconds()
        )

        closed = self.call(
            self.sessions.CloseClientlessSession,
            ss_pb.CloseClientlessSessionRequest(session_id=opened.session_id),
        ).session
        self.assertEqual(closed.session_id, opened.session_id)
        self.assertEqual(self.state_name(closed), "SESSION_STATE_ENDED")
        self.assertEqual(self.end_reason_name(closed), "END_REASON_CLOSED_BY_CLIENT")
        self.assertTrue(closed.HasField("end_time"))
        self.assert_recent(closed.end_time, "end_time")
        self.assertGreaterEqual(
            closed.end_time.ToNanoseconds(), closed.start_time.ToNanoseconds()
        )
        self.assertEqual(closed.start_time, info.start_time)

        # The ended record stays readable and is what the close returned.
        self.assertEqual(self.info(opened.session_id), closed)
        got = self.call(
            self.sessions.GetSessionUser,
            ss_pb.GetSessionUserRequest(session_id=opened.session_id),
        )
        self.assertEqual(got.user, user)

        # Closing again is idempotent: the record comes back unchanged.
        again = self.call(
            self.sessions.CloseClientlessSession,
            ss_pb.CloseClientlessSessionRequest(session_id=opened.session_id),
        ).session
        self.assertEqual(again, closed)

    def test_interactive_session_start_and_end(self):
        user = unique_user("web")
        started = self.start(user, client="contract_test.py from 127.0.0.1")
        self.assertGreater(started.session_id, 0)
        self.assertEqual(uuid.UUID(started.session_uuid).version, 7)
        info = self.info(started.session_id)
        self.assertEqual(info.user, user)
        self.assertEqual(info.client, "contract_test.py from 127.0.0.1")
        self.assertEqual(self.kind_name(info), "SESSION_KIND_INTERACTIVE")
        self.assertEqual(self.state_name(info), "SESSION_STATE_OPEN")
        self.assertEqual(info.start_time, started.session.start_time)
        self.assert_recent(info.start_time, "start_time")

        touched = self.call(
            self.sessions.TouchSession,
            ss_pb.TouchSessionRequest(session_id=started.session_id),
        )
        self.assertGreaterEqual(
            touched.last_activity_time.ToNanoseconds(),
            info.last_activity_time.ToNanoseconds(),
        )

        ended = self.call(
            self.sessions.EndSession,
            ss_pb.EndSessionRequest(session_id=started.session_id),
        ).session
        self.assertEqual(self.state_name(ended), "SESSION_STATE_ENDED")
        self.assertEqual(self.end_reason_name(ended), "END_REASON_CLOSED_BY_CLIENT")
        self.assertTrue(ended.HasField("end_time"))

        details = self.assert_fails(
            self.sessions.TouchSession,
            ss_pb.TouchSessionRequest(session_id=started.session_id),
            grpc.StatusCode.FAILED_PRECONDITION,
            "SESSION_ENDED",
        )
        self.assertEqual(
            details.error_info.metadata["session_id"], str(started.session_id)
        )

    def test_close_clientless_refuses_an_interactive_session(self):
        started = self.start(unique_user("web"))
        details = self.assert_fails(
            self.sessions.CloseClientlessSession,
            ss_pb.CloseClientlessSessionRequest(session_id=started.session_id),
            grpc.StatusCode.FAILED_PRECONDITION,
            "SESSION_NOT_CLIENTLESS",
        )
        self.assertEqual(
            details.error_info.metadata["session_id"], str(started.session_id)
        )
        # A request that fails changes nothing.
        self.assertEqual(self.state_name(self.info(started.session_id)), "SESSION_STATE_OPEN")

    def test_list_sessions_filters_and_pages(self):
        user = unique_user("lister")
        first = self.start(user).session_id
        second = self.open_clientless(user).session_id
        third = self.start(user).session_id
        self.start(unique_user("someone-else"))

        listed = self.call(
            self.sessions.ListSessions, ss_pb.ListSessionsRequest(user=user)
        )
        self.assertEqual([s.session_id for s in listed.sessions], [first, second, third])
        self.assertTrue(all(s.user == user for s in listed.sessions))
        self.assertEqual(listed.next_page_token, "")

        clientless = self.call(
            self.sessions.ListSessions,
            ss_pb.ListSessionsRequest(user=user, kind=pb.SESSION_KIND_CLIENTLESS),
        )
        self.assertEqual([s.session_id for s in clientless.sessions], [second])

        page = self.call(
            self.sessions.ListSessions,
            ss_pb.ListSessionsRequest(user=user, page_size=2),
        )
        self.assertEqual([s.session_id for s in page.sessions], [first, second])
        self.assertNotEqual(page.next_page_token, "")
        rest = self.call(
            self.sessions.ListSessions,
            ss_pb.ListSessionsRequest(
                user=user, page_size=2, page_token=page.next_page_token
            ),
        )
        self.assertEqual([s.session_id for s in rest.sessions], [third])
        self.assertEqual(rest.next_page_token, "")

        self.call(self.sessions.EndSession, ss_pb.EndSessionRequest(session_id=first))
        ended = self.call(
            self.sessions.ListSessions,
            ss_pb.ListSessionsRequest(user=user, state=pb.SESSION_STATE_ENDED),
        )
        self.assertEqual([s.session_id for s in ended.sessions], [first])
        still_open = self.call(
            self.sessions.ListSessions,
            ss_pb.ListSessionsRequest(user=user, state=pb.SESSION_STATE_OPEN),
        )
        self.assertEqual([s.session_id for s in still_open.sessions], [second, third])

    def test_unknown_session_is_not_found_with_its_id(self):
        session_id = unknown_session_id()
        for method, request in [
            (self.sessions.GetSessionUser, ss_pb.GetSessionUserRequest(session_id=session_id)),
            (self.sessions.GetSessionInfo, ss_pb.GetSessionInfoRequest(session_id=session_id)),
            (self.sessions.EndSession, ss_pb.EndSessionRequest(session_id=session_id)),
            (self.contexts.GetUserContext, uc_pb.GetUserContextRequest(session_id=session_id)),
        ]:
            with self.subTest(method=method_name(method)):
                details = self.assert_fails(
                    method, request, grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND"
                )
                self.assertEqual(details.error_info.metadata["session_id"], str(session_id))
                self.assertIsNone(details.bad_request, details)

    def test_invalid_user_is_a_bad_request_naming_the_field(self):
        for method, request in [
            (self.sessions.StartSession, ss_pb.StartSessionRequest(user="")),
            (self.sessions.StartSession, ss_pb.StartSessionRequest(user="   ")),
            (self.sessions.StartSession, ss_pb.StartSessionRequest(user="a\nb")),
            (self.sessions.StartSession, ss_pb.StartSessionRequest(user="x" * 257)),
            (self.sessions.OpenClientlessSession, ss_pb.OpenClientlessSessionRequest(user="")),
        ]:
            with self.subTest(method=method_name(method), user=request.user[:20]):
                details = self.assert_fails(
                    method,
                    request,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "INVALID_ARGUMENT",
                )
                self.assertIsNotNone(details.bad_request, f"no BadRequest in {details}")
                self.assertIn("user", details.violated_fields(), details)
                for violation in details.bad_request.field_violations:
                    self.assertNotEqual(violation.description, "", details)

    def test_non_positive_session_id_is_a_bad_request(self):
        details = self.assert_fails(
            self.sessions.GetSessionInfo,
            ss_pb.GetSessionInfoRequest(session_id=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        self.assertIn("session_id", details.violated_fields(), details)


class UserContextServiceTest(ContractTest):
    """UserContextService: the user context and its scopes."""

    def get(self, session_id):
        return self.call(
            self.contexts.GetUserContext,
            uc_pb.GetUserContextRequest(session_id=session_id),
        )

    def push(self, session_id, user):
        return self.call(
            self.contexts.PushUserContext,
            uc_pb.PushUserContextRequest(session_id=session_id, user=user),
        )

    def pop_request(self, session_id, scope_id):
        return uc_pb.PopUserContextRequest(session_id=session_id, scope_id=scope_id)

    def test_scopes_restore_what_was_there_before(self):
        owner = unique_user("R41")
        session_id = self.open_clientless(owner).session_id

        now = self.get(session_id)
        self.assertEqual((now.user, now.session_user, now.depth), (owner, owner, 0))

        outer = self.push(session_id, "alice")
        self.assertGreater(outer.scope_id, 0)
        self.assertEqual((outer.previous_user, outer.depth), (owner, 1))
        inner = self.push(session_id, "bob")
        self.assertNotEqual(inner.scope_id, outer.scope_id)
        self.assertEqual((inner.previous_user, inner.depth), ("alice", 2))
        now = self.get(session_id)
        self.assertEqual((now.user, now.session_user, now.depth), ("bob", owner, 2))

        # Popping the outer scope while the inner one is open is refused and
        # changes nothing.
        details = self.assert_fails(
            self.contexts.PopUserContext,
            self.pop_request(session_id, outer.scope_id),
            grpc.StatusCode.FAILED_PRECONDITION,
            "SCOPE_NOT_INNERMOST",
        )
        self.assertEqual(details.error_info.metadata["session_id"], str(session_id))
        self.assertEqual(details.error_info.metadata["scope_id"], str(outer.scope_id))
        now = self.get(session_id)
        self.assertEqual((now.user, now.depth), ("bob", 2))

        # Set replaces the current value; the pop still restores the value
        # from before the push.
        replaced = self.call(
            self.contexts.SetUserContext,
            uc_pb.SetUserContextRequest(session_id=session_id, user="carol"),
        )
        self.assertEqual(replaced.previous_user, "bob")
        info = self.info(session_id)
        self.assertEqual((info.user, info.effective_user), (owner, "carol"))
        self.assertEqual(info.user_context_depth, 2)

        popped = self.call(
            self.contexts.PopUserContext, self.pop_request(session_id, inner.scope_id)
        )
        self.assertEqual((popped.user, popped.depth), ("alice", 1))
        popped = self.call(
            self.contexts.PopUserContext, self.pop_request(session_id, outer.scope_id)
        )
        self.assertEqual((popped.user, popped.depth), (owner, 0))
        now = self.get(session_id)
        self.assertEqual((now.user, now.depth), (owner, 0))

        # A scope that was popped is no longer on the stack.
        self.assert_fails(
            self.contexts.PopUserContext,
            self.pop_request(session_id, outer.scope_id),
            grpc.StatusCode.NOT_FOUND,
            "SCOPE_NOT_FOUND",
        )

    def test_set_user_context_shows_in_the_session_record(self):
        owner = unique_user("owner")
        session_id = self.start(owner).session_id
        replaced = self.call(
            self.contexts.SetUserContext,
            uc_pb.SetUserContextRequest(session_id=session_id, user="R41"),
        )
        self.assertEqual(replaced.previous_user, owner)
        info = self.info(session_id)
        self.assertEqual(info.effective_user, "R41")
        self.assertEqual(info.user, owner)
        got = self.call(
            self.sessions.GetSessionUser,
            ss_pb.GetSessionUserRequest(session_id=session_id),
        )
        self.assertEqual(got.user, owner)

    def test_invalid_pushed_user_names_the_field(self):
        session_id = self.open_clientless(unique_user("R41")).session_id
        details = self.assert_fails(
            self.contexts.PushUserContext,
            uc_pb.PushUserContextRequest(session_id=session_id, user=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        self.assertIn("user", details.violated_fields(), details)
        self.assertEqual(self.get(session_id).depth, 0)

    def test_an_ended_session_refuses_user_context_calls(self):
        session_id = self.open_clientless(unique_user("R41")).session_id
        scope = self.push(session_id, "alice")
        self.call(
            self.sessions.CloseClientlessSession,
            ss_pb.CloseClientlessSessionRequest(session_id=session_id),
        )
        for method, request in [
            (self.contexts.GetUserContext, uc_pb.GetUserContextRequest(session_id=session_id)),
            (
                self.contexts.SetUserContext,
                uc_pb.SetUserContextRequest(session_id=session_id, user="bob"),
            ),
            (
                self.contexts.PushUserContext,
                uc_pb.PushUserContextRequest(session_id=session_id, user="bob"),
            ),
            (self.contexts.PopUserContext, self.pop_request(session_id, scope.scope_id)),
        ]:
            with self.subTest(method=method_name(method)):
                details = self.assert_fails(
                    method,
                    request,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "SESSION_ENDED",
                )
                self.assertEqual(details.error_info.metadata["session_id"], str(session_id))


def main(argv):
    global ENDPOINT
    if len(argv) != 2:
        print(f"usage: {argv[0]} HOST:PORT", file=sys.stderr)
        return 2
    ENDPOINT = argv[1]
    try:
        with grpc.insecure_channel(ENDPOINT) as channel:
            grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
    except grpc.FutureTimeoutError:
        print(f"cannot connect to {ENDPOINT} within {CALL_TIMEOUT} s", file=sys.stderr)
        print("0 passed, 1 failed", flush=True)
        return 1
    return harness.run_tests(sys.modules[__name__], set_stubs)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
