"""The seed's two context managers on the sync client:
:class:`ClientlessSession` (open a clientless session, run modules in it,
close it on leaving the block) and :class:`UserContextScope` (act as a user
inside the block, restore exactly what was there on leaving it).

Both do their clean-up when the block raises too; a clean-up that fails
then is logged and the block's exception goes on (a clean-up that fails
after a block that did not raise is raised).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional

from .errors import ConfigurationError, SessiondError
from .modules import ModuleRun
from .sessions import SessionInfo
from .user_contexts import PoppedScope

if TYPE_CHECKING:
    from .client import Client

_log = logging.getLogger("sessiond")


class ClientlessSession:
    """A clientless session, open inside a ``with`` block::

        with client.clientless_session("R41") as session:
            session.open_module(module_id="100000")
            data = session.get_return_value(module_id="100000", timeout=5)

    Entering opens the session for ``user``; leaving closes it gracefully —
    running modules conclude first (within ``grace`` seconds, ``None``: the
    server's default; the rest are cancelled) — also when the block raises.
    Outside ``with``: :meth:`open` and :meth:`close`.
    """

    def __init__(self, client: Client, user: str, *, grace: Optional[float] = None) -> None:
        self._client = client
        self._user = user
        self._grace = grace
        self._info: Optional[SessionInfo] = None
        self._closed: Optional[SessionInfo] = None

    @property
    def client(self) -> Client:
        """The client the session is opened with."""
        return self._client

    @property
    def user(self) -> str:
        """The user the session is for."""
        return self._user

    @property
    def info(self) -> SessionInfo:
        """The session's record as it was opened (or closed, once it is).

        Raises:
            ConfigurationError: before the session was opened.
        """
        if self._closed is not None:
            return self._closed
        return self._opened()

    @property
    def session_id(self) -> int:
        """The session's id.

        Raises:
            ConfigurationError: before the session was opened.
        """
        return self._opened().session_id

    def _opened(self) -> SessionInfo:
        if self._info is None:
            raise ConfigurationError(
                "the clientless session is not open: use it in a with block, or call open()"
            )
        return self._info

    def open(self) -> SessionInfo:
        """Opens the session (once).

        Raises:
            InvalidArgumentError, TooManySessionsError: see
                ``Client.open_clientless_session``.
        """
        if self._info is None:
            self._info = self._client.open_clientless_session(self._user)
        return self._info

    def open_module(self, module_id: str, **parameters: Any) -> ModuleRun:
        """Starts a run of ``module_id`` in this session with ``parameters``
        (keyword arguments, handed to the module as one JSON object). The
        seed's ``session.open_module(module_id='100000')``.

        Raises:
            See ``Client.open_module``.
        """
        return self._client.open_module(self.session_id, module_id, parameters or None)

    def get_return_value(self, module_id: str, timeout: float = 0.0) -> Any:
        """The return value of the module's latest run in this session,
        waiting up to ``timeout`` seconds. The seed's
        ``session.get_return_value(module_id='100000', timeout=5)``.

        Raises:
            See ``Client.get_return_value``.
        """
        return self._client.get_return_value(self.session_id, module_id, timeout)

    def user_context(self, user: str) -> UserContextScope:
        """A scope acting as ``user`` in this session (a context manager)."""
        return UserContextScope(self._client, self.session_id, user)

    def close(self) -> SessionInfo:
        """Closes the session gracefully (idempotent) and returns its ended
        record.

        Raises:
            See ``Client.close_clientless_session``.
        """
        if self._closed is None:
            self._closed = self._client.close_clientless_session(self.session_id, self._grace)
        return self._closed

    def __enter__(self) -> ClientlessSession:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._info is None or self._closed is not None:
            return
        try:
            self.close()
        except SessiondError as error:
            if exc is None:
                raise
            _log.warning(
                "closing clientless session %s while leaving a block that raised failed: %s",
                self._info.session_id,
                error,
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._info else "not opened"
        session = f" {self._info.session_id}" if self._info else ""
        return f"<ClientlessSession{session} for {self._user!r}, {state}>"


class UserContextScope:
    """A scope acting as ``user`` in a session, inside a ``with`` block::

        with client.user_context(session_id, "R41"):
            ...  # work in the session acts as R41

    Entering pushes the scope; leaving pops exactly this scope, restoring
    the user context from before the push — also when the block raises.
    Scopes nest; they are restored innermost first (a pop out of order is
    refused with ``ScopeNotInnermostError`` and changes nothing).
    """

    def __init__(self, client: Client, session_id: int, user: str) -> None:
        self._client = client
        self._session_id = session_id
        self._user = user
        self.scope_id: Optional[int] = None
        """The pushed scope's id, while it is open."""
        self.previous_user: Optional[str] = None
        """The user context the pop restores, while the scope is open."""

    @property
    def session_id(self) -> int:
        """The session the scope is in."""
        return self._session_id

    @property
    def user(self) -> str:
        """The user the scope acts as."""
        return self._user

    def __enter__(self) -> UserContextScope:
        pushed = self._client.push_user_context(self._session_id, self._user)
        self.scope_id = pushed.scope_id
        self.previous_user = pushed.previous_user
        return self

    def restore(self) -> Optional[PoppedScope]:
        """Pops this scope now (idempotent); ``None`` when it is not open.

        Raises:
            ScopeNotInnermostError: when a scope pushed after it is open.
        """
        if self.scope_id is None:
            return None
        popped = self._client.pop_user_context(self._session_id, self.scope_id)
        self.scope_id = None
        return popped

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        try:
            self.restore()
        except SessiondError as error:
            if exc is None:
                raise
            _log.warning(
                "restoring the user context of session %s while leaving a block that raised failed: %s",
                self._session_id,
                error,
            )

    def __repr__(self) -> str:
        return f"<UserContextScope {self._user!r} in session {self._session_id}, scope {self.scope_id}>"
