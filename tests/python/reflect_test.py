"""Checks reflect.py, the grpcurl-style reflection client, against a server.

Usage: python tests/python/reflect_test.py HOST:PORT

Runs ``reflect.py`` as a command, exactly as a user would, and asserts on
what it prints: ``list`` shows both sessiond services and the health
service, ``describe`` renders services, methods, messages and enums (with
their comments), ``call`` does JSON calls of each sessiond service and of
``grpc.health.v1.Health/Check``, and failed calls show the status code and
the decoded error details with grpcurl's exit status (64 + code).

Prints a last line ``N passed, M failed`` and exits non-zero unless every
test passed.
"""

import json
import os
import re
import subprocess
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

REFLECT = os.path.join(HERE, "reflect.py")
ENDPOINT = None  # set by main()
# How long one reflect.py run may take.
RUN_TIMEOUT = 60

# grpcurl's exit statuses: 64 + the gRPC code.
EXIT_NOT_FOUND = 64 + 5
EXIT_INVALID_ARGUMENT = 64 + 3
EXIT_FAILED_PRECONDITION = 64 + 9


class Run:
    """The outcome of one reflect.py command."""

    def __init__(self, args, completed):
        self.args = args
        self.status = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return (
            f"reflect.py {' '.join(self.args)} -> exit {self.status}\n"
            f"--- stdout\n{self.out}--- stderr\n{self.err}"
        )


def reflect(*args, stdin=None):
    """Runs reflect.py ENDPOINT ARGS... and returns what happened."""
    completed = subprocess.run(
        [sys.executable, REFLECT, ENDPOINT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    return Run(list(args), completed)


def unique_user(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ReflectTest(unittest.TestCase):
    def ok(self, *args, stdin=None):
        """Runs reflect.py and asserts it succeeded."""
        run = reflect(*args, stdin=stdin)
        self.assertEqual(run.status, 0, run)
        return run

    def call(self, method, request, *options):
        """A JSON call that must succeed; returns the decoded response."""
        return self.ok(*options, "call", method, json.dumps(request)).json()

    # list ---------------------------------------------------------------------

    def test_list_shows_both_sessiond_services_and_health(self):
        services = self.ok("list").out.splitlines()
        for service in [
            "sessiond.v1.SessionService",
            "sessiond.v1.UserContextService",
            "sessiond.v1.AccessService",
            "sessiond.v1.AuditService",
            "grpc.health.v1.Health",
        ]:
            self.assertIn(service, services)
        self.assertTrue(
            any(s.startswith("grpc.reflection.") for s in services), services
        )
        self.assertEqual(services, sorted(services))

    def test_list_a_service_shows_its_methods(self):
        methods = self.ok("list", "sessiond.v1.UserContextService").out.splitlines()
        self.assertEqual(
            methods,
            [
                "sessiond.v1.UserContextService.GetUserContext",
                "sessiond.v1.UserContextService.PopUserContext",
                "sessiond.v1.UserContextService.PushUserContext",
                "sessiond.v1.UserContextService.SetUserContext",
            ],
        )
        methods = self.ok("list", "sessiond.v1.SessionService").out.splitlines()
        self.assertEqual(len(methods), 11, methods)
        self.assertIn("sessiond.v1.SessionService.OpenClientlessSession", methods)

    def test_list_an_unknown_service_fails(self):
        run = reflect("list", "sessiond.v1.NoSuchService")
        self.assertEqual(run.status, 1, run)
        self.assertIn("not found", run.err)

    # describe -----------------------------------------------------------------

    def test_describe_a_service(self):
        lines = self.ok("describe", "sessiond.v1.SessionService").out.splitlines()
        self.assertEqual(lines[0], "sessiond.v1.SessionService is a service:")
        self.assertIn("service SessionService {", lines)
        self.assertIn(
            "  rpc StartSession ( .sessiond.v1.StartSessionRequest ) returns "
            "( .sessiond.v1.StartSessionResponse );",
            lines,
        )
        self.assertEqual(sum(1 for line in lines if line.startswith("  rpc ")), 11)
        self.assertIn("// The session authority. See ErrorReason for the error model.", lines)
        self.assertEqual(lines[-1], "}")

    def test_describe_a_method_in_either_spelling(self):
        for symbol in [
            "sessiond.v1.UserContextService.PopUserContext",
            "sessiond.v1.UserContextService/PopUserContext",
        ]:
            with self.subTest(symbol=symbol):
                lines = self.ok("describe", symbol).out.splitlines()
                self.assertEqual(
                    lines[0], "sessiond.v1.UserContextService.PopUserContext is a method:"
                )
                self.assertEqual(
                    lines[-1],
                    "rpc PopUserContext ( .sessiond.v1.PopUserContextRequest ) returns "
                    "( .sessiond.v1.PopUserContextResponse );",
                )
                self.assertTrue(lines[1].startswith("// Closes the innermost scope"), lines)

    def test_describe_a_message(self):
        lines = self.ok("describe", "sessiond.v1.SessionInfo").out.splitlines()
        self.assertEqual(lines[0], "sessiond.v1.SessionInfo is a message:")
        for line in [
            "message SessionInfo {",
            "  int64 session_id = 1;",
            "  .sessiond.v1.SessionKind kind = 4;",
            "  .google.protobuf.Timestamp start_time = 6;",
            "  uint32 user_context_depth = 12;",
        ]:
            self.assertIn(line, lines)
        lines = self.ok("describe", "sessiond.v1.ModuleFailure").out.splitlines()
        self.assertIn("  optional int32 exit_code = 3;", lines)
        lines = self.ok("describe", "sessiond.v1.ListSessionsResponse").out.splitlines()
        self.assertIn("  repeated .sessiond.v1.SessionInfo sessions = 1;", lines)

    def test_describe_an_enum(self):
        lines = self.ok("describe", "sessiond.v1.SessionState").out.splitlines()
        self.assertEqual(lines[0], "sessiond.v1.SessionState is an enum:")
        values = [line.strip() for line in lines if re.match(r"^  [A-Z_]+ = \d+;$", line)]
        self.assertEqual(
            values,
            [
                "SESSION_STATE_UNSPECIFIED = 0;",
                "SESSION_STATE_OPEN = 1;",
                "SESSION_STATE_CLOSING = 2;",
                "SESSION_STATE_ENDED = 3;",
            ],
        )

    def test_describe_the_error_model(self):
        lines = self.ok("describe", "sessiond.v1.ErrorReason").out.splitlines()
        self.assertEqual(lines[0], "sessiond.v1.ErrorReason is an enum:")
        values = [line.strip() for line in lines if re.match(r"^  [A-Z_]+ = \d+;$", line)]
        self.assertEqual(values[0], "ERROR_REASON_UNSPECIFIED = 0;")
        self.assertIn("ERROR_REASON_SESSION_NOT_FOUND = 2;", values)
        self.assertIn("ERROR_REASON_OWNER_UNAVAILABLE = 13;", values)
        # The details' types come from the server too, as grpcurl needs them.
        lines = self.ok("describe", "google.rpc.ErrorInfo").out.splitlines()
        self.assertEqual(lines[0], "google.rpc.ErrorInfo is a message:")
        self.assertIn("  string reason = 1;", lines)
        lines = self.ok("describe", "google.rpc.BadRequest").out.splitlines()
        self.assertIn(
            "  repeated .google.rpc.BadRequest.FieldViolation field_violations = 1;", lines
        )

    def test_describe_the_health_service(self):
        lines = self.ok("describe", "grpc.health.v1.Health").out.splitlines()
        self.assertEqual(lines[0], "grpc.health.v1.Health is a service:")
        self.assertIn(
            "  rpc Watch ( .grpc.health.v1.HealthCheckRequest ) returns "
            "( stream .grpc.health.v1.HealthCheckResponse );",
            lines,
        )

    def test_describe_an_unknown_symbol_fails(self):
        run = reflect("describe", "sessiond.v1.NoSuchMessage")
        self.assertEqual(run.status, 1, run)
        self.assertIn("not found", run.err)
        self.assertEqual(run.out, "")

    # call ---------------------------------------------------------------------

    def test_call_session_service_with_json(self):
        user = unique_user("R41")
        started = self.call("sessiond.v1.SessionService/StartSession", {"user": user})
        # int64 is a JSON string; field names are lowerCamelCase.
        self.assertRegex(started["sessionId"], r"^[1-9][0-9]*$")
        self.assertEqual(uuid.UUID(started["sessionUuid"]).version, 7)
        session = started["session"]
        self.assertEqual(session["user"], user)
        self.assertEqual(session["kind"], "SESSION_KIND_INTERACTIVE")
        self.assertEqual(session["state"], "SESSION_STATE_OPEN")
        self.assertRegex(session["startTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertNotIn("endTime", session)

        info = self.call(
            "sessiond.v1.SessionService/GetSessionInfo",
            {"sessionId": started["sessionId"]},
        )["session"]
        self.assertEqual(info["sessionUuid"], started["sessionUuid"])
        self.assertEqual(info["startTime"], session["startTime"])

        ended = self.call(
            "sessiond.v1.SessionService/EndSession", {"session_id": started["sessionId"]}
        )["session"]
        self.assertEqual(ended["state"], "SESSION_STATE_ENDED")
        self.assertEqual(ended["endReason"], "END_REASON_CLOSED_BY_CLIENT")

    def test_call_user_context_service_with_json(self):
        user = unique_user("R41")
        opened = self.call("sessiond.v1.SessionService/OpenClientlessSession", {"user": user})
        self.assertEqual(opened["session"]["kind"], "SESSION_KIND_CLIENTLESS")
        session_id = opened["sessionId"]

        context = self.call(
            "sessiond.v1.UserContextService/GetUserContext", {"sessionId": session_id}
        )
        # A depth of 0 is a default value, which JSON output leaves out.
        self.assertEqual(context, {"user": user, "sessionUser": user})
        context = self.call(
            "sessiond.v1.UserContextService/GetUserContext",
            {"sessionId": session_id},
            "--emit-defaults",
        )
        self.assertEqual(context, {"user": user, "sessionUser": user, "depth": 0})

        pushed = self.call(
            "sessiond.v1.UserContextService/PushUserContext",
            {"sessionId": session_id, "user": "alice"},
        )
        self.assertEqual(pushed["previousUser"], user)
        self.assertEqual(pushed["depth"], 1)
        context = self.call(
            "sessiond.v1.UserContextService/GetUserContext", {"sessionId": session_id}
        )
        self.assertEqual(context, {"user": "alice", "sessionUser": user, "depth": 1})

        # The request can come from stdin too.
        popped = self.ok(
            "call",
            "sessiond.v1.UserContextService/PopUserContext",
            "@",
            stdin=json.dumps({"sessionId": session_id, "scopeId": pushed["scopeId"]}),
        ).json()
        self.assertEqual(popped, {"user": user})

    def test_a_failed_call_shows_code_and_error_details(self):
        run = reflect(
            "call", "sessiond.v1.SessionService/GetSessionUser", '{"sessionId": "987654321987"}'
        )
        self.assertEqual(run.status, EXIT_NOT_FOUND, run)
        self.assertIn("  Code: NotFound", run.out)
        self.assertIn('"@type": "type.googleapis.com/google.rpc.ErrorInfo"', run.out)
        self.assertIn('"reason": "SESSION_NOT_FOUND"', run.out)
        self.assertIn('"session_id": "987654321987"', run.out)

        run = reflect("call", "sessiond.v1.SessionService/StartSession", '{"user": ""}')
        self.assertEqual(run.status, EXIT_INVALID_ARGUMENT, run)
        self.assertIn("  Code: InvalidArgument", run.out)
        self.assertIn('"@type": "type.googleapis.com/google.rpc.BadRequest"', run.out)
        self.assertIn('"field": "user"', run.out)

    def test_popping_an_outer_scope_fails_precondition(self):
        session_id = self.call(
            "sessiond.v1.SessionService/OpenClientlessSession", {"user": unique_user("R41")}
        )["sessionId"]
        outer = self.call(
            "sessiond.v1.UserContextService/PushUserContext",
            {"sessionId": session_id, "user": "alice"},
        )
        self.call(
            "sessiond.v1.UserContextService/PushUserContext",
            {"sessionId": session_id, "user": "bob"},
        )
        run = reflect(
            "call",
            "sessiond.v1.UserContextService/PopUserContext",
            json.dumps({"sessionId": session_id, "scopeId": outer["scopeId"]}),
        )
        self.assertEqual(run.status, EXIT_FAILED_PRECONDITION, run)
        self.assertIn('"reason": "SCOPE_NOT_INNERMOST"', run.out)

    def test_bad_json_and_unknown_methods_fail_before_calling(self):
        for args in [
            ["call", "sessiond.v1.SessionService/StartSession", '{"usr": "R41"}'],
            ["call", "sessiond.v1.SessionService/StartSession", "not json"],
            ["call", "sessiond.v1.SessionService/NoSuchMethod", "{}"],
            ["call", "sessiond.v1.NoSuchService/StartSession", "{}"],
        ]:
            with self.subTest(args=args):
                run = reflect(*args)
                self.assertEqual(run.status, 1, run)
                self.assertIn("Failed:", run.err)
                self.assertEqual(run.out, "")

    # health -------------------------------------------------------------------

    def test_health_check_overall_and_per_service(self):
        self.assertEqual(self.call("grpc.health.v1.Health/Check", {}), {"status": "SERVING"})
        for service in ["sessiond.v1.SessionService", "sessiond.v1.UserContextService"]:
            with self.subTest(service=service):
                self.assertEqual(
                    self.call("grpc.health.v1.Health/Check", {"service": service}),
                    {"status": "SERVING"},
                )
        run = reflect("call", "grpc.health.v1.Health/Check", '{"service": "no.such.Service"}')
        self.assertEqual(run.status, EXIT_NOT_FOUND, run)


def main(argv):
    global ENDPOINT
    if len(argv) != 2:
        print(f"usage: {argv[0]} HOST:PORT", file=sys.stderr)
        return 2
    ENDPOINT = argv[1]
    return harness.run_suite(unittest.defaultTestLoader.loadTestsFromTestCase(ReflectTest))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
