"""What the cross-language scripts (contract_test.py, reflect_test.py,
mtls_test.py, jwt_test.py) share.

- ``generate_stubs``: Python stubs from ``proto/`` with ``grpc_tools.protoc``
  in a temporary directory, imported as modules.
- ``ErrorDetails``: a failed call's code and its ``google.rpc.ErrorInfo``,
  read with ``grpcio-status``.
- ``run_tests`` / ``run_suite``: run a module's (or a suite's) ``unittest``
  tests and print the last line ``N passed, M failed`` that
  ``tests/cross_language.rs`` reads.
"""

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import uuid

from google.rpc import error_details_pb2
from grpc_status import rpc_status

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(REPO_ROOT, "proto")
# Every file of the contract, and the modules generated from each.
PROTO_FILES = [
    "sessiond/v1/error_reason.proto",
    "sessiond/v1/session.proto",
    "sessiond/v1/session_service.proto",
    "sessiond/v1/user_context_service.proto",
    "sessiond/v1/access_service.proto",
    "sessiond/v1/event.proto",
    "sessiond/v1/audit_service.proto",
]
# How long one call may take before the test fails.
CALL_TIMEOUT = 10.0


class Stubs:
    """The generated modules: ``er_pb`` (error_reason.proto), ``pb``
    (session.proto), ``ss_pb`` / ``ss_grpc``
    (SessionService), ``uc_pb`` / ``uc_grpc`` (UserContextService),
    ``ac_pb`` / ``ac_grpc`` (AccessService), ``ev_pb`` (event.proto),
    ``au_pb`` / ``au_grpc`` (AuditService)."""

    def __init__(self, out_dir):
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            PROTO_DIR,
            "--python_out",
            out_dir,
            "--grpc_python_out",
            out_dir,
            *PROTO_FILES,
        ]
        subprocess.run(command, check=True)
        # protoc writes no __init__.py, so out_dir/sessiond would only be a
        # namespace portion, and an installed package named `sessiond` (the
        # Python client, clients/python, whose sessiond.v1 is the same code
        # committed) would win over it. As regular packages first on the
        # path, the stubs just generated are the ones imported.
        for package in ("sessiond", os.path.join("sessiond", "v1")):
            open(os.path.join(out_dir, package, "__init__.py"), "a").close()
        sys.path.insert(0, out_dir)

        def module(name):
            imported = importlib.import_module(f"sessiond.v1.{name}")
            if not os.path.abspath(imported.__file__).startswith(os.path.abspath(out_dir)):
                raise ImportError(f"sessiond.v1.{name} came from {imported.__file__}, not {out_dir}")
            return imported

        self.er_pb = module("error_reason_pb2")
        self.pb = module("session_pb2")
        self.ss_pb = module("session_service_pb2")
        self.ss_grpc = module("session_service_pb2_grpc")
        self.uc_pb = module("user_context_service_pb2")
        self.uc_grpc = module("user_context_service_pb2_grpc")
        self.ac_pb = module("access_service_pb2")
        self.ac_grpc = module("access_service_pb2_grpc")
        self.ev_pb = module("event_pb2")
        self.au_pb = module("audit_service_pb2")
        self.au_grpc = module("audit_service_pb2_grpc")


def unique_user(prefix):
    """A user name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ErrorDetails:
    """The code, message and decoded details (ErrorInfo, BadRequest) of a
    failed call."""

    def __init__(self, error):
        self.code = error.code()
        self.message = error.details()
        self.error_info = None
        self.bad_request = None
        status = rpc_status.from_call(error)
        if status is None:
            return
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                self.error_info = error_details_pb2.ErrorInfo()
                detail.Unpack(self.error_info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                self.bad_request = error_details_pb2.BadRequest()
                detail.Unpack(self.bad_request)

    def violated_fields(self):
        """The fields named by the BadRequest violations."""
        if self.bad_request is None:
            return []
        return [v.field for v in self.bad_request.field_violations]

    def __repr__(self):
        return (
            f"{self.code} {self.message!r} error_info={self.error_info} "
            f"bad_request={self.bad_request}"
        )


class CountingResult(unittest.TextTestResult):
    """Counts each test once, as passed or failed (subtests included)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed_tests = set()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.failed_tests.add(test.id())

    def addError(self, test, err):
        super().addError(test, err)
        # A subtest or class-level error is reported against its parent.
        self.failed_tests.add(getattr(test, "test_case", test).id())

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.failed_tests.add(test.id())


def run_tests(module, set_stubs):
    """Generates the stubs, hands them to ``set_stubs``, runs the tests of
    ``module`` and prints ``N passed, M failed``; returns the exit status."""
    out_dir = tempfile.mkdtemp(prefix="sessiond-stubs-")
    try:
        set_stubs(Stubs(out_dir))
        return run_suite(unittest.defaultTestLoader.loadTestsFromModule(module))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def run_suite(suite):
    """Runs ``suite`` and prints ``N passed, M failed`` (the last line
    ``tests/cross_language.rs`` reads); returns the exit status."""
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=CountingResult)
    result = runner.run(suite)
    failed = len(result.failed_tests)
    passed = result.testsRun - failed - len(result.skipped)
    sys.stdout.flush()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 and result.wasSuccessful() else 1
