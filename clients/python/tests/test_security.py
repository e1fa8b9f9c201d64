"""Tokens, the policy and TLS: a server that authenticates its callers, a
module calling back with its run's own token, and TLS with and without a
client certificate."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiond
from sessiond import AuthenticationMethod, Permission

from .pki import CLIENT_SUBJECT, Pki, make_pki
from .servers import EXAMPLE_POLICY, Server, sessiond_binary, unique_user


def make_token(tokens: Path, subject: str, *groups: str) -> str:
    """A new static token (``sessiond token create``)."""
    args = [str(sessiond_binary()), "token", "create", "--tokens", str(tokens), "--subject", subject]
    for group in groups:
        args += ["--group", group]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


class Secure:
    """A server with static tokens and the example policy, and its tokens."""

    def __init__(self, server: Server, tokens: dict[str, str]) -> None:
        self.server = server
        self.tokens = tokens

    def client(self, who: str) -> sessiond.Client:
        return self.server.client(token=self.tokens[who])


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, test_modules: Path) -> Iterator[Secure]:
    directory = tmp_path_factory.mktemp("secure")
    tokens_file = directory / "tokens.toml"
    tokens = {
        "billing": make_token(tokens_file, "billing", "services"),
        "operator": make_token(tokens_file, "ops", "operators"),
        "R41": make_token(tokens_file, "R41"),
    }
    server = Server(
        directory,
        "--tokens",
        str(tokens_file),
        "--policy",
        str(EXAMPLE_POLICY),
        "--modules",
        str(test_modules),
    )
    server.start()
    yield Secure(server, tokens)
    server.stop()


def test_a_call_without_a_credential_is_unauthenticated(secure: Secure) -> None:
    with secure.server.client(token="") as anonymous:
        with pytest.raises(sessiond.UnauthenticatedError):
            anonymous.who_am_i()
    with secure.server.client(token="sdt_not-a-token") as forged:
        with pytest.raises(sessiond.UnauthenticatedError):
            forged.get_session_user(1)


def test_a_token_authenticates_every_call(secure: Secure, monkeypatch: pytest.MonkeyPatch) -> None:
    with secure.client("billing") as billing:
        me = billing.who_am_i()
    assert (me.subject, me.groups, me.method) == ("billing", ["services"], AuthenticationMethod.STATIC_TOKEN)
    monkeypatch.setenv("SESSIOND_TOKEN", secure.tokens["R41"])
    with sessiond.Client(secure.server.endpoint) as from_environment:
        assert from_environment.who_am_i().subject == "R41"


def test_the_policy_refuses_with_permission_denied_and_hides_sessions(secure: Secure) -> None:
    with secure.client("billing") as billing, secure.client("R41") as r41:
        session = billing.open_clientless_session("R42")
        try:
            with pytest.raises(sessiond.PermissionDeniedError) as denied:
                billing.push_user_context(session.session_id, "admin")
            error = denied.value
            assert (error.permission, error.subject, error.user) == ("act_as", "billing", "admin")
            assert not billing.check_access(Permission.ACT_AS, session_id=session.session_id, user="admin")
            assert billing.check_access(Permission.ACT_AS, session_id=session.session_id, user="R43")
            # R42's session does not exist for R41.
            with pytest.raises(sessiond.SessionNotFoundError):
                r41.get_session_user(session.session_id)
            with pytest.raises(sessiond.PermissionDeniedError) as audit:
                list(r41.list_events())
            assert audit.value.permission == "read_audit"
        finally:
            billing.close_clientless_session(session.session_id)


def test_an_operator_reads_the_audit_trail_with_the_refusals(secure: Secure) -> None:
    with secure.client("operator") as operator:
        refused = list(operator.list_events(kinds=[sessiond.EventKind.CALL_REFUSED]))
    assert refused and all(event.error_reason for event in refused)


def test_a_module_calls_back_with_its_runs_own_token(secure: Secure) -> None:
    with secure.client("billing") as billing:
        with billing.clientless_session("R41") as session:
            session.open_module("seed-api", act_as="R42", forbidden="admin")
            seen = session.get_return_value("seed-api", timeout=30)
    assert seen["method"] == "module_run"
    assert seen["token_session_id"] == session.session_id
    assert (seen["before"], seen["inside"], seen["after"]) == ("R41", "R42", "R41")
    assert seen["forbidden"] == "act_as", "the run acts for billing, who may not act as admin"
    assert seen["session_user"] == "R41"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_with_the_servers_ca(tmp_path: Path, pki: Pki) -> None:
    server = Server(tmp_path, "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    server.start()
    try:
        tls = sessiond.TlsSettings.from_files(ca=pki.ca)
        # A bare HOST:PORT with TLS settings means https://.
        for endpoint in (server.endpoint, f"https://{server.endpoint}"):
            with sessiond.Client(endpoint, tls=tls) as client:
                assert client.get_session_user(client.open_clientless_session("R41").session_id) == "R41"
        untrusted = sessiond.RetryPolicy(max_attempts=1)
        with sessiond.Client(f"https://{server.endpoint}", retry=untrusted) as client:
            with pytest.raises(sessiond.UnavailableError):
                client.who_am_i()  # the system's CAs do not know the test CA
    finally:
        server.stop()


def test_a_module_of_a_tls_server_connects_back_with_the_ca(
    tmp_path: Path, pki: Pki, test_modules: Path
) -> None:
    server = Server(
        tmp_path,
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--modules",
        str(test_modules),
    )
    server.start()
    try:
        tls = sessiond.TlsSettings.from_files(ca=pki.ca)
        with sessiond.Client(server.endpoint, tls=tls) as client:
            with client.clientless_session("SYSTEM") as session:
                session.open_module("seed-api", act_as="R41", ca=str(pki.ca))
                seen = session.get_return_value("seed-api", timeout=30)
        assert (seen["session_id"], seen["inside"], seen["after"]) == (session.session_id, "R41", "SYSTEM")
    finally:
        server.stop()


def test_a_client_certificate_authenticates_the_caller(tmp_path: Path, pki: Pki) -> None:
    server = Server(
        tmp_path,
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--tls-client-ca",
        str(pki.ca),
    )
    server.start()
    try:
        tls = sessiond.TlsSettings.from_files(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
        with sessiond.Client(server.endpoint, tls=tls) as client:
            me = client.who_am_i()
        assert (me.subject, me.method) == (CLIENT_SUBJECT, AuthenticationMethod.TLS_CLIENT_CERTIFICATE)
        with sessiond.Client(server.endpoint, tls=sessiond.TlsSettings.from_files(ca=pki.ca)) as without:
            with pytest.raises(sessiond.UnauthenticatedError):
                without.who_am_i()
    finally:
        server.stop()


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(sessiond.ConfigurationError):
        sessiond.TlsSettings.from_files(cert=tmp_path / "client.pem")
    with pytest.raises(sessiond.ConfigurationError, match="cannot read"):
        sessiond.TlsSettings.from_files(ca=tmp_path / "missing.pem")
    assert "secret" not in repr(sessiond.TlsSettings(client_key=b"secret")), "no key material in logs"
