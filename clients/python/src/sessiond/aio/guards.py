"""The seed's two context managers on the asyncio client
(``async with``), with the sync ones' behaviour (:mod:`sessiond.guards`)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional

from ..errors import ConfigurationError, SessiondError
from ..modules import ModuleRun
from ..sessions import SessionInfo
from ..user_contexts import PoppedScope

if TYPE_CHECKING:
    from .client import Client

_log = logging.getLogger("sessiond")


class ClientlessSession:
    """A clientless session open inside an ``async with`` block: opened on
    entering, closed gracefully on leaving (running modules conclude first),
    also when the block raises."""

    def __init__(self, client: Client, user: str, *, grace: Optional[float] = None) -> None:
        self._client = client
        self._user = user
        self._grace = grace
        self._info: Optional[SessionInfo] = None
        self._closed: Optional[SessionInfo] = None

    @property
    def user(self) -> str:
        """The user the session is for."""
        return self._user

    @property
    def info(self) -> SessionInfo:
        """The session's record as it was opened (or closed)."""
        if self._closed is not None:
            return self._closed
        return self._opened()

    @property
    def session_id(self) -> int:
        """The session's id."""
        return self._opened().session_id

    def _opened(self) -> SessionInfo:
        if self._info is None:
            raise ConfigurationError(
                "the clientless session is not open: use it in an async with block, or await open()"
            )
        return self._info

    async def open(self) -> SessionInfo:
        """Opens the session (once)."""
        if self._info is None:
            self._info = await self._client.open_clientless_session(self._user)
        return self._info

    async def open_module(self, module_id: str, **parameters: Any) -> ModuleRun:
        """Starts a run of ``module_id`` with ``parameters``."""
        return await self._client.open_module(self.session_id, module_id, parameters or None)

    async def get_return_value(self, module_id: str, timeout: float = 0.0) -> Any:
        """The return value of the module's latest run in this session."""
        return await self._client.get_return_value(self.session_id, module_id, timeout)

    def user_context(self, user: str) -> UserContextScope:
        """A scope acting as ``user`` in this session."""
        return UserContextScope(self._client, self.session_id, user)

    async def close(self) -> SessionInfo:
        """Closes the session gracefully (idempotent)."""
        if self._closed is None:
            self._closed = await self._client.close_clientless_session(self.session_id, self._grace)
        return self._closed

    async def __aenter__(self) -> ClientlessSession:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._info is None or self._closed is not None:
            return
        try:
            await self.close()
        except SessiondError as error:
            if exc is None:
                raise
            _log.warning(
                "closing clientless session %s while leaving a block that raised failed: %s",
                self._info.session_id,
                error,
            )


class UserContextScope:
    """A scope acting as ``user`` in a session inside an ``async with``
    block: pushed on entering, exactly this scope popped on leaving."""

    def __init__(self, client: Client, session_id: int, user: str) -> None:
        self._client = client
        self._session_id = session_id
        self._user = user
        self.scope_id: Optional[int] = None
        self.previous_user: Optional[str] = None

    async def __aenter__(self) -> UserContextScope:
        pushed = await self._client.push_user_context(self._session_id, self._user)
        self.scope_id = pushed.scope_id
        self.previous_user = pushed.previous_user
        return self

    async def restore(self) -> Optional[PoppedScope]:
        """Pops this scope now (idempotent)."""
        if self.scope_id is None:
            return None
        popped = await self._client.pop_user_context(self._session_id, self.scope_id)
        self.scope_id = None
        return popped

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        try:
            await self.restore()
        except SessiondError as error:
            if exc is None:
                raise
            _log.warning(
                "restoring the user context of session %s while leaving a block that raised failed: %s",
                self._session_id,
                error,
            )
