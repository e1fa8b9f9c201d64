"""Where and how a client connects: the endpoint, TLS, the bearer token.

An endpoint is ``HOST:PORT``, ``http://HOST:PORT`` or ``https://HOST:PORT``
(what ``SESSIOND_ENDPOINT`` holds inside a module). A bare ``HOST:PORT`` is
plaintext unless TLS settings are given, as with ``sessionctl``; ``https://``
without settings trusts the system's CAs. With no endpoint at all, a client
takes ``SESSIOND_ENDPOINT`` from the environment, else ``127.0.0.1:50051``;
with no token, ``SESSIOND_TOKEN`` (pass ``token=""`` for none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import grpc

from .errors import ConfigurationError

#: The endpoint used when neither the caller nor the environment names one.
DEFAULT_ENDPOINT = "127.0.0.1:50051"
#: The deadline of each call unless the client is told otherwise (seconds).
DEFAULT_TIMEOUT = 30.0

_PathLike = Union[str, "os.PathLike[str]"]

#: Channel options set unless the caller's ``options`` set them: after a lost
#: connection grpcio waits 1 s, growing to 2 min, before it dials again, and
#: fails calls at once meanwhile; a server that restarts in a second would
#: then see retried reads give up before it is dialled again. Reconnecting
#: from 100 ms, growing to 5 s, keeps the retries meaningful.
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


@dataclass(frozen=True)
class TlsSettings:
    """TLS for an ``https://`` endpoint: the CA to trust (``None``: the
    system's), and a client certificate for servers that authenticate
    callers by certificate. PEM bytes; :meth:`from_files` reads them."""

    ca_certificate: Optional[bytes] = None
    client_certificate: Optional[bytes] = None
    client_key: Optional[bytes] = None
    server_name: Optional[str] = None
    """The name to verify the server's certificate against, when it is not
    the endpoint's host."""

    @classmethod
    def from_files(
        cls,
        ca: Optional[_PathLike] = None,
        cert: Optional[_PathLike] = None,
        key: Optional[_PathLike] = None,
        server_name: Optional[str] = None,
    ) -> TlsSettings:
        """Reads the PEM files (``cert`` and ``key`` together or not at all).

        Raises:
            ConfigurationError: when a file cannot be read, or only one of
                ``cert`` and ``key`` is given.
        """
        if (cert is None) != (key is None):
            raise ConfigurationError("a client certificate needs both cert and key")

        def read(path: Optional[_PathLike]) -> Optional[bytes]:
            if path is None:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as error:
                raise ConfigurationError(f"cannot read {path}: {error.strerror}") from None

        return cls(read(ca), read(cert), read(key), server_name)

    def __repr__(self) -> str:  # no key material in logs
        return (
            f"TlsSettings(ca_certificate={'set' if self.ca_certificate else None}, "
            f"client_certificate={'set' if self.client_certificate else None}, "
            f"server_name={self.server_name!r})"
        )

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials of these settings."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_certificate,
            private_key=self.client_key,
            certificate_chain=self.client_certificate,
        )


@dataclass(frozen=True)
class Target:
    """A parsed endpoint: the address grpcio dials, and whether over TLS."""

    address: str
    tls: Optional[TlsSettings]

    @classmethod
    def parse(cls, endpoint: Optional[str], tls: Optional[TlsSettings]) -> Target:
        """Parses ``endpoint`` (``None``: ``SESSIOND_ENDPOINT``, else
        :data:`DEFAULT_ENDPOINT`).

        Raises:
            ConfigurationError: for an empty endpoint, or TLS settings on an
                ``http://`` one.
        """
        if endpoint is None:
            endpoint = os.environ.get("SESSIOND_ENDPOINT") or DEFAULT_ENDPOINT
        text = endpoint.strip()
        scheme, separator, rest = text.partition("://")
        if not separator:
            scheme, rest = ("https" if tls is not None else "http"), text
        rest = rest.rstrip("/")
        if not rest or "/" in rest:
            raise ConfigurationError(f"the endpoint {endpoint!r} is not HOST:PORT")
        if scheme == "http":
            if tls is not None:
                raise ConfigurationError(f"TLS settings need an https:// endpoint, not {endpoint!r}")
            return cls(rest, None)
        if scheme == "https":
            return cls(rest, tls if tls is not None else TlsSettings())
        raise ConfigurationError(f"the endpoint {endpoint!r} is not http:// or https://")

    def channel_options(self, options: Any) -> list[tuple[str, Any]]:
        """grpcio channel options: the caller's, the TLS server name, and
        :data:`DEFAULT_CHANNEL_OPTIONS` the caller's do not set."""
        merged = list(options or ())
        given = {name for name, _ in merged}
        merged.extend(option for option in DEFAULT_CHANNEL_OPTIONS if option[0] not in given)
        if self.tls is not None and self.tls.server_name:
            merged.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return merged


def bearer_metadata(token: Optional[str]) -> Optional[tuple[tuple[str, str], ...]]:
    """The call metadata carrying ``token`` (``None``: ``SESSIOND_TOKEN``;
    empty: no token).

    Raises:
        ConfigurationError: for a token that cannot be a header value.
    """
    if token is None:
        token = os.environ.get("SESSIOND_TOKEN", "")
    token = token.strip()
    if not token:
        return None
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in token):
        raise ConfigurationError("the token has characters a header cannot carry")
    return (("authorization", f"Bearer {token}"),)
