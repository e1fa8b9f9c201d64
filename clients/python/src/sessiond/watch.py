"""The sync watch: :class:`WatchStream`, an iterator over
``WatchSessions`` that reconnects and resumes where it was."""

from __future__ import annotations

import collections
import threading
import time
from types import TracebackType
from typing import Any, Callable, Optional

import grpc

from ._watch import WatchPosition, may_resume
from .errors import RequestSubject, SessiondError, UnavailableError, from_rpc_error
from .events import WatchItem
from .retry import RetryPolicy


class WatchStream:
    """The iterator of :meth:`Client.watch_sessions
    <sessiond.client.Client.watch_sessions>`: ``Event``, ``WatchProgress`` and
    ``InitialStateEnd`` items until :meth:`close` (then the iteration ends),
    or an error it does not resume from (raised).

    Nothing is sent until the first item is asked for. ``close()`` may be
    called from another thread to stop a blocked iteration.
    """

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
        self._call: Any = None  # the current connection's response iterator
        self._ready: collections.deque[WatchItem] = collections.deque()
        self._failures_in_a_row = 0
        self._ended = False
        self._lock = threading.Lock()

    @property
    def last_revision(self) -> Optional[int]:
        """The last revision delivered: a later watch with ``after_revision``
        set to it continues exactly here."""
        return self._position.seen

    def __iter__(self) -> WatchStream:
        return self

    def __next__(self) -> WatchItem:
        while True:
            if self._ready:
                return self._ready.popleft()
            if self._ended:
                raise StopIteration
            try:
                self._receive()
            except SessiondError as error:
                self._call = None
                if self._ended:  # closed meanwhile
                    raise StopIteration from None
                self._position.interrupted(error)
                self._failures_in_a_row += 1
                if may_resume(error) and self._failures_in_a_row < self._retry.max_attempts:
                    time.sleep(self._retry.backoff(self._failures_in_a_row))
                    continue
                self._ended = True
                raise

    def _receive(self) -> None:
        """Connects if need be and takes the next message into the queue."""
        with self._lock:
            if self._ended:
                return
            if self._call is None:
                # No deadline: a watch lasts as long as it is read.
                self._call = self._method(self._position.request(), metadata=self._metadata)
            call = self._call
        try:
            response = next(call)
        except StopIteration:
            raise UnavailableError(
                "the server ended the watch without a status",
                code=grpc.StatusCode.UNAVAILABLE,
                subject=self._subject,
            ) from None
        except grpc.RpcError as error:
            raise from_rpc_error(error, self._subject) from None
        self._failures_in_a_row = 0
        self._ready.extend(self._position.receive(response))

    def close(self) -> None:
        """Stops the watch: the connection is cancelled and the iteration
        ends (items already received are still delivered)."""
        with self._lock:
            self._ended = True
            call, self._call = self._call, None
        if call is not None:
            call.cancel()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
