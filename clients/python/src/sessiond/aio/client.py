"""The asyncio client: :class:`Client`, the sync client's methods as
coroutines over one ``grpc.aio`` channel, with the same deadlines, retries
and errors."""

from __future__ import annotations

import asyncio
import copy
import datetime
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Optional, Sequence, TypeVar

import grpc
import grpc.aio

from .. import _rpcs
from .._rpcs import Plan
from ..access import AccessDecision, Permission, WhoAmI
from ..connection import DEFAULT_TIMEOUT, Target, TlsSettings, bearer_metadata
from ..errors import RequestSubject, from_rpc_error
from ..events import Checkpoint, Event, EventKind, EventPage, LedgerVerification
from ..modules import ModuleRun
from ..retry import RetryPolicy
from ..sessions import SessionInfo, SessionKind, SessionPage, SessionState
from ..user_contexts import PoppedScope, PushedScope, UserContextInfo
from ..v1 import (
    access_service_pb2_grpc,
    audit_service_pb2_grpc,
    session_service_pb2_grpc,
    user_context_service_pb2_grpc,
)
from .guards import ClientlessSession, UserContextScope
from .watch import WatchStream

T = TypeVar("T")

_ALL_PAGES_SIZE = 1000


class Client:
    """A sessiond client for asyncio: the methods of
    :class:`sessiond.Client` as coroutines, with the same arguments,
    results and errors::

        import sessiond.aio

        async with sessiond.aio.Client("127.0.0.1:50051") as client:
            async with client.clientless_session("R41") as session:
                await session.open_module("100000")
                data = await session.get_return_value("100000", timeout=5)

    Create it inside the event loop that uses it (grpc.aio channels belong
    to one loop).

    Raises:
        ConfigurationError: for a malformed endpoint or token, or TLS
            settings on an ``http://`` endpoint.
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        token: Optional[str] = None,
        tls: Optional[TlsSettings] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        retry: Optional[RetryPolicy] = None,
        options: Optional[Iterable[tuple[str, Any]]] = None,
    ) -> None:
        target = Target.parse(endpoint, tls)
        channel_options = target.channel_options(options)
        if target.tls is None:
            channel = grpc.aio.insecure_channel(target.address, options=channel_options)
        else:
            channel = grpc.aio.secure_channel(
                target.address, target.tls.credentials(), options=channel_options
            )
        self._channel = channel
        self._metadata = bearer_metadata(token)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        stubs: dict[str, Any] = {
            _rpcs.SESSIONS: session_service_pb2_grpc.SessionServiceStub(channel),
            _rpcs.CONTEXTS: user_context_service_pb2_grpc.UserContextServiceStub(channel),
            _rpcs.ACCESS: access_service_pb2_grpc.AccessServiceStub(channel),
            _rpcs.AUDIT: audit_service_pb2_grpc.AuditServiceStub(channel),
        }
        self._methods = {rpc.name: getattr(stubs[rpc.service], rpc.name) for rpc in _rpcs.UNARY_RPCS}
        self._watch = stubs[_rpcs.SESSIONS].WatchSessions
        self.endpoint = target.address
        """The address the client dials."""

    @property
    def timeout(self) -> Optional[float]:
        """The deadline of each call in seconds, if any."""
        return self._timeout

    @property
    def retry(self) -> RetryPolicy:
        """How retryable calls are retried."""
        return self._retry

    def with_timeout(self, timeout: Optional[float]) -> Client:
        """A client on the same connection whose calls have ``timeout`` as
        their deadline (``None``: none). Closing either closes both."""
        clone = copy.copy(self)
        clone._timeout = timeout
        return clone

    async def close(self) -> None:
        """Closes the connection; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"aio.Client({self.endpoint!r}, timeout={self._timeout}, retry={self._retry})"

    async def _run(self, plan: Plan[T]) -> T:
        method = self._methods[plan.rpc.name]
        timeout = self._timeout
        if timeout is not None:
            timeout += plan.extra_time
        attempt = 1
        while True:
            try:
                response = await method(plan.request, timeout=timeout, metadata=self._metadata)
            except grpc.aio.AioRpcError as error:
                if attempt < self._retry.max_attempts and plan.rpc.kind.may_retry(error):
                    await asyncio.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise from_rpc_error(error, RequestSubject.of(plan.request)) from None
            return plan.decode(response)

    # Sessions (see sessiond.Client for each method's documentation) ------------

    async def get_session_user(self, session_id: int) -> str:
        """The user a session belongs to. Raises ``SessionNotFoundError``."""
        return await self._run(_rpcs.get_session_user(session_id))

    async def get_session_info(self, session_id: int) -> SessionInfo:
        """A session's record. Raises ``SessionNotFoundError``."""
        return await self._run(_rpcs.get_session_info(session_id))

    async def list_sessions_page(
        self,
        *,
        user: Optional[str] = None,
        kind: Optional[SessionKind] = None,
        state: Optional[SessionState] = None,
        page_size: int = 0,
        page_token: Optional[str] = None,
        states: Sequence[SessionState] = (),
    ) -> SessionPage:
        """One page of sessions, oldest first."""
        return await self._run(
            _rpcs.list_sessions_page(user, kind, state, page_size, page_token, states)
        )

    async def list_sessions(
        self,
        *,
        user: Optional[str] = None,
        kind: Optional[SessionKind] = None,
        state: Optional[SessionState] = None,
        states: Sequence[SessionState] = (),
    ) -> list[SessionInfo]:
        """Every session that matches, oldest first (all pages)."""
        sessions: list[SessionInfo] = []
        token: Optional[str] = None
        while True:
            page = await self.list_sessions_page(
                user=user,
                kind=kind,
                state=state,
                states=states,
                page_size=_ALL_PAGES_SIZE,
                page_token=token,
            )
            sessions.extend(page.sessions)
            token = page.next_page_token
            if token is None:
                return sessions

    async def start_session(self, user: str, client: str = "") -> SessionInfo:
        """Registers an interactive session for ``user``."""
        return await self._run(_rpcs.start_session(user, client))

    async def touch_session(self, session_id: int) -> datetime.datetime:
        """Records activity on an open session."""
        return await self._run(_rpcs.touch_session(session_id))

    async def end_session(self, session_id: int) -> SessionInfo:
        """Ends a session (idempotent)."""
        return await self._run(_rpcs.end_session(session_id))

    async def open_clientless_session(self, user: str) -> SessionInfo:
        """Opens a clientless session on behalf of ``user``."""
        return await self._run(_rpcs.open_clientless_session(user))

    async def close_clientless_session(
        self, session_id: int, grace: Optional[float] = None
    ) -> SessionInfo:
        """Shuts a clientless session down gracefully (idempotent)."""
        return await self._run(_rpcs.close_clientless_session(session_id, grace))

    def clientless_session(self, user: str, *, grace: Optional[float] = None) -> ClientlessSession:
        """A clientless session for ``user`` as an async context manager:
        opened on entering the ``async with`` block, closed on leaving it."""
        return ClientlessSession(self, user, grace=grace)

    # Modules ------------------------------------------------------------------

    async def open_module(
        self,
        session_id: int,
        module_id: str,
        parameters: Optional[Mapping[str, Any]] = None,
    ) -> ModuleRun:
        """Starts a run of ``module_id`` in an open clientless session."""
        return await self._run(_rpcs.open_module(session_id, module_id, parameters))

    async def get_return_value(self, session_id: int, module_id: str, timeout: float = 0.0) -> Any:
        """The return value of the module's latest run, waiting up to
        ``timeout`` seconds. Raises ``ModuleFailedError``,
        ``ModuleStillRunningError``, ``ModuleNotOpenedError``."""
        return await self._run(_rpcs.get_return_value(session_id, module_id, timeout))

    # User contexts --------------------------------------------------------------

    async def get_user_context(self, session_id: int) -> UserContextInfo:
        """A session's current user context."""
        return await self._run(_rpcs.get_user_context(session_id))

    async def set_user_context(self, session_id: int, user: str) -> str:
        """Replaces a session's user context; returns the previous one."""
        return await self._run(_rpcs.set_user_context(session_id, user))

    async def push_user_context(self, session_id: int, user: str) -> PushedScope:
        """Opens a scope acting as ``user``."""
        return await self._run(_rpcs.push_user_context(session_id, user))

    async def pop_user_context(self, session_id: int, scope_id: int) -> PoppedScope:
        """Closes the innermost scope, restoring the user context before it."""
        return await self._run(_rpcs.pop_user_context(session_id, scope_id))

    def user_context(self, session_id: int, user: str) -> UserContextScope:
        """A scope acting as ``user`` as an async context manager."""
        return UserContextScope(self, session_id, user)

    # Access -------------------------------------------------------------------

    async def who_am_i(self) -> WhoAmI:
        """Who the server takes the caller to be."""
        return await self._run(_rpcs.who_am_i())

    async def check_access(
        self,
        permission: Permission,
        *,
        session_id: Optional[int] = None,
        user: Optional[str] = None,
        module_id: Optional[str] = None,
    ) -> AccessDecision:
        """Whether the caller may take an action, without taking it."""
        return await self._run(_rpcs.check_access(permission, session_id, user, module_id))

    # Audit --------------------------------------------------------------------

    async def list_events_page(
        self,
        *,
        session_id: Optional[int] = None,
        user: Optional[str] = None,
        subject: Optional[str] = None,
        kinds: Iterable[EventKind] = (),
        start_time: Optional[datetime.datetime] = None,
        end_time: Optional[datetime.datetime] = None,
        after_revision: int = 0,
        newest_first: bool = False,
        page_size: int = 0,
        page_token: Optional[str] = None,
    ) -> EventPage:
        """One page of the audit trail (needs ``read_audit``)."""
        return await self._run(
            _rpcs.list_events_page(
                session_id=session_id,
                user=user,
                subject=subject,
                kinds=list(kinds),
                start_time=start_time,
                end_time=end_time,
                after_revision=after_revision,
                newest_first=newest_first,
                page_size=page_size,
                page_token=page_token,
            )
        )

    async def list_events(
        self,
        *,
        session_id: Optional[int] = None,
        user: Optional[str] = None,
        subject: Optional[str] = None,
        kinds: Iterable[EventKind] = (),
        start_time: Optional[datetime.datetime] = None,
        end_time: Optional[datetime.datetime] = None,
        after_revision: int = 0,
        newest_first: bool = False,
    ) -> AsyncIterator[Event]:
        """Every matching event of the audit trail, page after page."""
        kinds = list(kinds)
        token: Optional[str] = None
        while True:
            page = await self.list_events_page(
                session_id=session_id,
                user=user,
                subject=subject,
                kinds=kinds,
                start_time=start_time,
                end_time=end_time,
                after_revision=after_revision,
                newest_first=newest_first,
                page_size=_ALL_PAGES_SIZE,
                page_token=token,
            )
            for event in page.events:
                yield event
            token = page.next_page_token
            if token is None:
                return

    async def verify_ledger(self, from_revision: int = 0, to_revision: int = 0) -> LedgerVerification:
        """Recomputes the event log's hash chain over a range."""
        return await self._run(_rpcs.verify_ledger(from_revision, to_revision))

    async def get_checkpoint(self) -> Checkpoint:
        """The log's head and compaction checkpoint."""
        return await self._run(_rpcs.get_checkpoint())

    # Watching -----------------------------------------------------------------

    def watch_sessions(
        self,
        *,
        after_revision: int = 0,
        user: Optional[str] = None,
        session_id: Optional[int] = None,
        initial_state: bool = False,
        retry: Optional[RetryPolicy] = None,
    ) -> WatchStream:
        """Watches sessions: an async iterator with the items and the
        resuming of :meth:`sessiond.Client.watch_sessions`; ``aclose()`` (or
        ``async with``) stops it."""
        return WatchStream(
            self._watch,
            self._metadata,
            after_revision=after_revision,
            user=user,
            session_id=session_id,
            initial_state=initial_state,
            retry=retry or self._retry,
        )
