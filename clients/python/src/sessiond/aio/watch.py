"""The asyncio watch: :class:`WatchStream`, an async iterator over
``WatchSessions`` that reconnects and resumes where it was."""

from __future__ import annotations

import asyncio
import collections
from types import TracebackType
from typing import Any, Callable, Optional

import grpc
import grpc.aio

from .._watch import WatchPosition, may_resume
from ..errors import RequestSubject, SessiondError, UnavailableError, from_rpc_error
from ..events import WatchItem
from ..retry import RetryPolicy


class WatchStream:
    """The async iterator of :meth:`sessiond.aio.Client.watch_sessions`
    (``async for item in watch``); :meth:`aclose` stops it."""

    def __init__(
        self,
        method: Callable[..., Any],
        metadata: Optional[tuple[tuple[str, str], ...]],
        *,
        after_revision: int,
        user: Optional[str],
        session_id: Optional[int],
        initial_state: bool,
        retry: RetryPolicy,
    ) -> None:
        self._method = method
        self._metadata = metadata
        self._position = WatchPosition(
            after_revision=after_revision,
            user=user,
            session_id=session_id,
            initial_state=initial_state,
        )
        self._subject = RequestSubject(session_id=session_id, user=user)
        self._retry = retry
        self._call: Any = None
        self._ready: collections.deque[WatchItem] = collections.deque()
        self._failures_in_a_row = 0
        self._ended = False

    @property
    def last_revision(self) -> Optional[int]:
        """The last revision delivered."""
        return self._position.seen

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchItem:
        while True:
            if self._ready:
                return self._ready.popleft()
            if self._ended:
                raise StopAsyncIteration
            try:
                await self._receive()
            except SessiondError as error:
                self._call = None
                if self._ended:
                    raise StopAsyncIteration from None
                self._position.interrupted(error)
                self._failures_in_a_row += 1
                if may_resume(error) and self._failures_in_a_row < self._retry.max_attempts:
                    await asyncio.sleep(self._retry.backoff(self._failures_in_a_row))
                    continue
                self._ended = True
                raise

    async def _receive(self) -> None:
        if self._call is None:
            self._call = self._method(self._position.request(), metadata=self._metadata)
        try:
            response = await self._call.read()
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error, self._subject) from None
        except asyncio.CancelledError:
            if self._ended:
                raise SessiondError("the watch was closed", code=grpc.StatusCode.CANCELLED) from None
            raise
        if response is grpc.aio.EOF:
            raise UnavailableError(
                "the server ended the watch without a status",
                code=grpc.StatusCode.UNAVAILABLE,
                subject=self._subject,
            )
        self._failures_in_a_row = 0
        self._ready.extend(self._position.receive(response))

    async def aclose(self) -> None:
        """Stops the watch: the connection is cancelled, the iteration ends."""
        self._ended = True
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()
