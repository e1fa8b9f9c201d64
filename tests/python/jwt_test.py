"""Bearer JWTs from Python: tokens signed here with PyJWT, checked by the
server against its JWKS and the example policy.

Usage: python tests/python/jwt_test.py HOST:PORT KEY_PEM KID ISSUER AUDIENCE

The server at HOST:PORT (plain HTTP/2) accepts JWTs from ISSUER for
AUDIENCE (``--jwt-issuer``, ``--jwt-audience``, ``--jwks``), signed with the
ES256 key whose private half is the PKCS#8 PEM file KEY_PEM and whose JWKS
entry is KID, and applies ``examples/policy.toml``: callers in the group
``services`` may open clientless sessions for and act as users R*.

Checks WhoAmI for a valid token; that a ``services`` token opens a
clientless session for R41 and pushes R42 but is refused admin
(PERMISSION_DENIED with ErrorInfo reason and metadata); that a session the
caller may not read is NOT_FOUND; and that an expired token, one for
another audience and one signed by another key are UNAUTHENTICATED.
Prints a last line ``N passed, M failed`` and exits non-zero unless every
test passed. Requires grpcio, grpcio-tools, grpcio-status, PyJWT and
cryptography.
"""

import sys
import time
import unittest

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import harness
from harness import CALL_TIMEOUT, ErrorDetails

# Filled in by main().
ENDPOINT = None
KEY = None  # the issuer's private key
KID = None
ISSUER = None
AUDIENCE = None
stubs = None


def token(subject, groups, key=None, **overrides):
    """A JWT for ``subject`` in ``groups``, valid for an hour from now,
    signed with the issuer's key (or ``key``); ``overrides`` replace or add
    claims."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "groups": groups,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.encode(claims, key or KEY, algorithm="ES256", headers={"kid": KID})


def bearer(jwt_token):
    """Call metadata carrying ``jwt_token``."""
    return [("authorization", f"Bearer {jwt_token}")]


class JwtTest(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(ENDPOINT)
        self.addCleanup(self.channel.close)
        self.access = stubs.ac_grpc.AccessServiceStub(self.channel)
        self.sessions = stubs.ss_grpc.SessionServiceStub(self.channel)
        self.contexts = stubs.uc_grpc.UserContextServiceStub(self.channel)
        self.service = bearer(token("billing", ["services"]))

    def fails(self, call, code, reason):
        """Asserts that ``call()`` fails with ``code`` and ErrorInfo
        ``reason``; returns the details."""
        with self.assertRaises(grpc.RpcError) as caught:
            call()
        details = ErrorDetails(caught.exception)
        self.assertEqual(details.code, code, details)
        self.assertIsNotNone(details.error_info, details)
        self.assertEqual(details.error_info.domain, "sessiond", details)
        self.assertEqual(details.error_info.reason, reason, details)
        return details

    def who_am_i(self, metadata):
        return self.access.WhoAmI(
            stubs.ac_pb.WhoAmIRequest(), timeout=CALL_TIMEOUT, metadata=metadata
        )

    def open_clientless(self, user, metadata):
        return self.sessions.OpenClientlessSession(
            stubs.ss_pb.OpenClientlessSessionRequest(user=user),
            timeout=CALL_TIMEOUT,
            metadata=metadata,
        )

    def push(self, session_id, user, metadata):
        return self.contexts.PushUserContext(
            stubs.uc_pb.PushUserContextRequest(session_id=session_id, user=user),
            timeout=CALL_TIMEOUT,
            metadata=metadata,
        )

    def test_who_am_i_names_the_tokens_subject_and_groups(self):
        me = self.who_am_i(bearer(token("billing", ["services", "reports"])))
        self.assertEqual(me.subject, "billing")
        self.assertEqual(list(me.groups), ["services", "reports"])
        self.assertEqual(me.method, stubs.ac_pb.AUTHENTICATION_METHOD_JWT)
        self.assertEqual(me.session_id, 0)

    def test_a_services_token_opens_for_r41_and_pushes_r42_but_not_admin(self):
        opened = self.open_clientless("R41", self.service)
        session_id = opened.session_id
        self.assertGreater(session_id, 0)
        pushed = self.push(session_id, "R42", self.service)
        self.assertEqual(pushed.previous_user, "R41")
        self.assertEqual(pushed.depth, 1)

        details = self.fails(
            lambda: self.push(session_id, "admin", self.service),
            grpc.StatusCode.PERMISSION_DENIED,
            "PERMISSION_DENIED",
        )
        metadata = details.error_info.metadata
        self.assertEqual(metadata["permission"], "act_as", details)
        self.assertEqual(metadata["subject"], "billing", details)
        self.assertEqual(metadata["session_id"], str(session_id), details)
        self.assertEqual(metadata["user"], "admin", details)
        self.assertNotIn("module_id", metadata, details)

        # The refusal changed nothing: R42 is still the context, one deep.
        context = self.contexts.GetUserContext(
            stubs.uc_pb.GetUserContextRequest(session_id=session_id),
            timeout=CALL_TIMEOUT,
            metadata=self.service,
        )
        self.assertEqual((context.user, context.session_user, context.depth), ("R42", "R41", 1))

        # CheckAccess agrees with both calls.
        for user, allowed in [("R42", True), ("admin", False)]:
            with self.subTest(user=user):
                decision = self.access.CheckAccess(
                    stubs.ac_pb.CheckAccessRequest(
                        permission=stubs.ac_pb.PERMISSION_ACT_AS,
                        session_id=session_id,
                        user=user,
                    ),
                    timeout=CALL_TIMEOUT,
                    metadata=self.service,
                )
                self.assertEqual(decision.allowed, allowed, decision)

        self.sessions.CloseClientlessSession(
            stubs.ss_pb.CloseClientlessSessionRequest(session_id=session_id),
            timeout=CALL_TIMEOUT,
            metadata=self.service,
        )

    def test_a_services_token_may_not_open_a_session_for_admin(self):
        details = self.fails(
            lambda: self.open_clientless("admin", self.service),
            grpc.StatusCode.PERMISSION_DENIED,
            "PERMISSION_DENIED",
        )
        metadata = details.error_info.metadata
        self.assertEqual(metadata["permission"], "open_clientless_session", details)
        self.assertEqual(metadata["subject"], "billing", details)
        self.assertEqual(metadata["user"], "admin", details)

    def test_a_session_the_caller_may_not_read_is_not_found(self):
        session_id = self.open_clientless("R41", self.service).session_id
        stranger = bearer(token(harness.unique_user("enduser"), []))
        details = self.fails(
            lambda: self.sessions.GetSessionInfo(
                stubs.ss_pb.GetSessionInfoRequest(session_id=session_id),
                timeout=CALL_TIMEOUT,
                metadata=stranger,
            ),
            grpc.StatusCode.NOT_FOUND,
            "SESSION_NOT_FOUND",
        )
        self.assertEqual(details.error_info.metadata["session_id"], str(session_id), details)
        self.sessions.CloseClientlessSession(
            stubs.ss_pb.CloseClientlessSessionRequest(session_id=session_id),
            timeout=CALL_TIMEOUT,
            metadata=self.service,
        )

    def test_an_expired_token_is_unauthenticated(self):
        now = int(time.time())
        expired = token("billing", ["services"], exp=now - 3600, nbf=now - 7200, iat=now - 7200)
        self.fails(
            lambda: self.who_am_i(bearer(expired)),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        )
        self.fails(
            lambda: self.open_clientless("R41", bearer(expired)),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        )

    def test_a_token_for_another_audience_is_unauthenticated(self):
        misdirected = token("billing", ["services"], aud="someone-else")
        self.fails(
            lambda: self.who_am_i(bearer(misdirected)),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        )

    def test_a_token_signed_by_another_key_is_unauthenticated(self):
        forged = token("billing", ["services"], key=ec.generate_private_key(ec.SECP256R1()))
        self.fails(
            lambda: self.who_am_i(bearer(forged)),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        )

    def test_no_token_is_unauthenticated(self):
        self.fails(
            lambda: self.who_am_i(None),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        )


def main(argv):
    global ENDPOINT, KEY, KID, ISSUER, AUDIENCE
    if len(argv) != 6:
        print(f"usage: {argv[0]} HOST:PORT KEY_PEM KID ISSUER AUDIENCE", file=sys.stderr)
        return 2
    ENDPOINT, key_file, KID, ISSUER, AUDIENCE = argv[1:]
    with open(key_file, "rb") as file:
        KEY = serialization.load_pem_private_key(file.read(), password=None)

    def set_stubs(generated):
        global stubs
        stubs = generated

    return harness.run_tests(sys.modules[__name__], set_stubs)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
