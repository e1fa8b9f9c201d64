"""Mutual TLS from Python: a grpcio client presenting a client certificate.

Usage: python tests/python/mtls_test.py HOST:PORT PKI_DIR SUBJECT

The server at HOST:PORT serves TLS with a certificate for 127.0.0.1 signed
by ``PKI_DIR/ca.pem`` and verifies client certificates against the same CA
(``--tls-cert``, ``--tls-key``, ``--tls-client-ca``). ``PKI_DIR`` also
holds ``client.pem`` / ``client.key`` (signed by that CA; its first SAN is
SUBJECT, its common name something else) and ``stranger.pem`` /
``stranger.key`` (from another CA).

The server's policy lets SUBJECT read every session and open (and so
close) clientless sessions for users R*.

Checks that WhoAmI names the certificate's SAN with method
TLS_CLIENT_CERTIFICATE and that the policy applies to that subject, that
a certificate from another CA gets no call
through, and that a call with neither a certificate nor a token is
UNAUTHENTICATED with ErrorInfo reason UNAUTHENTICATED (read with
``grpcio-status``). Prints a last line ``N passed, M failed`` and exits
non-zero unless every test passed. Requires grpcio, grpcio-tools and
grpcio-status.
"""

import os
import sys
import unittest

import grpc

import harness
from harness import CALL_TIMEOUT, ErrorDetails

# Filled in by main().
ENDPOINT = None
PKI_DIR = None
SUBJECT = None
stubs = None


def read(name):
    with open(os.path.join(PKI_DIR, name), "rb") as file:
        return file.read()


def channel(identity=None):
    """A TLS channel trusting ca.pem, presenting ``identity`` (the base name
    of a PEM certificate and key in PKI_DIR), or no certificate."""
    if identity is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=read("ca.pem"))
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read("ca.pem"),
            private_key=read(f"{identity}.key"),
            certificate_chain=read(f"{identity}.pem"),
        )
    return grpc.secure_channel(ENDPOINT, credentials)


class MutualTlsTest(unittest.TestCase):
    def who_am_i(self, identity, metadata=None):
        """WhoAmI over a new channel presenting ``identity``."""
        with channel(identity) as ch:
            access = stubs.ac_grpc.AccessServiceStub(ch)
            return access.WhoAmI(
                stubs.ac_pb.WhoAmIRequest(), timeout=CALL_TIMEOUT, metadata=metadata
            )

    def assert_unauthenticated(self, call):
        with self.assertRaises(grpc.RpcError) as caught:
            call()
        details = ErrorDetails(caught.exception)
        self.assertEqual(details.code, grpc.StatusCode.UNAUTHENTICATED, details)
        self.assertIsNotNone(details.error_info, details)
        self.assertEqual(details.error_info.domain, "sessiond", details)
        self.assertEqual(details.error_info.reason, "UNAUTHENTICATED", details)
        return details

    def test_who_am_i_names_the_certificates_san(self):
        me = self.who_am_i("client")
        self.assertEqual(me.subject, SUBJECT)
        self.assertEqual(list(me.groups), [])
        self.assertEqual(
            me.method, stubs.ac_pb.AUTHENTICATION_METHOD_TLS_CLIENT_CERTIFICATE
        )
        self.assertEqual(me.session_id, 0)

    def test_the_policy_applies_to_the_certificates_subject(self):
        # The server's policy lets SUBJECT read sessions and open clientless
        # sessions for R* users only.
        with channel("client") as ch:
            sessions = stubs.ss_grpc.SessionServiceStub(ch)
            opened = sessions.OpenClientlessSession(
                stubs.ss_pb.OpenClientlessSessionRequest(user=harness.unique_user("R")),
                timeout=CALL_TIMEOUT,
            )
            self.assertGreater(opened.session_id, 0)
            with self.assertRaises(grpc.RpcError) as caught:
                sessions.OpenClientlessSession(
                    stubs.ss_pb.OpenClientlessSessionRequest(user="admin"),
                    timeout=CALL_TIMEOUT,
                )
            details = ErrorDetails(caught.exception)
            self.assertEqual(details.code, grpc.StatusCode.PERMISSION_DENIED, details)
            self.assertEqual(details.error_info.reason, "PERMISSION_DENIED", details)
            self.assertEqual(details.error_info.metadata["subject"], SUBJECT, details)
            self.assertEqual(
                details.error_info.metadata["permission"], "open_clientless_session", details
            )
            self.assertEqual(details.error_info.metadata["user"], "admin", details)
            sessions.CloseClientlessSession(
                stubs.ss_pb.CloseClientlessSessionRequest(session_id=opened.session_id),
                timeout=CALL_TIMEOUT,
            )

    def test_a_certificate_from_another_ca_gets_no_call_through(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.who_am_i("stranger")
        # The handshake fails: the call never reaches a service, so it is
        # not answered with a status of sessiond's.
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE, caught.exception)
        self.assertIsNone(ErrorDetails(caught.exception).error_info)

    def test_no_certificate_and_no_token_is_unauthenticated(self):
        self.assert_unauthenticated(lambda: self.who_am_i(None))
        with channel(None) as ch:
            sessions = stubs.ss_grpc.SessionServiceStub(ch)
            self.assert_unauthenticated(
                lambda: sessions.OpenClientlessSession(
                    stubs.ss_pb.OpenClientlessSessionRequest(user=SUBJECT),
                    timeout=CALL_TIMEOUT,
                )
            )

    def test_a_bearer_token_it_does_not_accept_wins_over_the_certificate(self):
        details = self.assert_unauthenticated(
            lambda: self.who_am_i("client", metadata=[("authorization", "Bearer sdt_unknown")])
        )
        self.assertNotIn("sdt_unknown", details.message, "the token is not echoed")


def main(argv):
    global ENDPOINT, PKI_DIR, SUBJECT
    if len(argv) != 4:
        print(f"usage: {argv[0]} HOST:PORT PKI_DIR SUBJECT", file=sys.stderr)
        return 2
    ENDPOINT, PKI_DIR, SUBJECT = argv[1:]

    def set_stubs(generated):
        global stubs
        stubs = generated

    return harness.run_tests(sys.modules[__name__], set_stubs)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
