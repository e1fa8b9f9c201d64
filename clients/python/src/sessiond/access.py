"""Who the server takes the caller to be (:class:`WhoAmI`) and what it may
do (:class:`Permission`, :class:`AccessDecision`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ._enums import ContractEnum
from .v1 import access_service_pb2


class AuthenticationMethod(ContractEnum):
    """How a caller proved who it is."""

    NONE = 1
    """The server runs without authentication; the caller is ``anonymous``."""
    TLS_CLIENT_CERTIFICATE = 2
    JWT = 3
    STATIC_TOKEN = 4
    MODULE_RUN = 5
    """A module run's ``SESSIOND_TOKEN``: acts on the run's own session only."""


class Permission(ContractEnum):
    """An action the policy grants or refuses. ``str()`` is its name as a
    ``PERMISSION_DENIED`` error's metadata spells it (``"act_as"``)."""

    READ_SESSION = 1
    START_SESSION = 2
    OPEN_CLIENTLESS_SESSION = 3
    TOUCH_SESSION = 4
    END_SESSION = 5
    ACT_AS = 6
    RUN_MODULE = 7
    READ_AUDIT = 8


@dataclass(frozen=True)
class WhoAmI:
    """The caller as the server authenticated it."""

    subject: str
    """The authenticated subject; ``"anonymous"`` without authentication."""
    groups: list[str]
    method: Optional[AuthenticationMethod]
    session_id: Optional[int]
    """For a module run's credential: the one session it may act on."""

    @classmethod
    def from_pb(cls, response: access_service_pb2.WhoAmIResponse) -> WhoAmI:
        """Decodes ``WhoAmIResponse``."""
        return cls(
            subject=response.subject,
            groups=list(response.groups),
            method=AuthenticationMethod.from_wire(response.method),
            session_id=response.session_id or None,
        )


@dataclass(frozen=True)
class AccessDecision:
    """Whether the caller may take an action (``check_access``)."""

    allowed: bool
    reason: str
    """Why not, when it may not."""

    def __bool__(self) -> bool:
        return self.allowed
