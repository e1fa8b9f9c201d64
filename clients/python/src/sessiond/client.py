"""The sync client: :class:`Client`, a method for every RPC of the contract
on the package's types, over one grpcio channel.

Each call has a deadline (:data:`~sessiond.connection.DEFAULT_TIMEOUT`
seconds unless the client says otherwise; calls that wait on purpose —
``get_return_value``, ``close_clientless_session``, ``end_session`` — get
their wait on top), sent as ``grpc-timeout``. Reads, and the writes the
contract makes idempotent, are retried on ``UNAVAILABLE``
(:class:`~sessiond.retry.RetryPolicy`); every failure is raised as the
:class:`~sessiond.errors.SessiondError` of its reason.
"""

from __future__ import annotations

import copy
import datetime
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Optional, Sequence, TypeVar

import grpc

from . import _rpcs
from ._rpcs import Plan
from .access import AccessDecision, Permission, WhoAmI
from .connection import DEFAULT_TIMEOUT, Target, TlsSettings, bearer_metadata
from .errors import RequestSubject, from_rpc_error
from .events import Checkpoint, Event, EventKind, EventPage, LedgerVerification
from .guards import ClientlessSession, UserContextScope
from .modules import ModuleRun
from .retry import RetryPolicy
from .sessions import SessionInfo, SessionKind, SessionPage, SessionState
from .user_contexts import PoppedScope, PushedScope, UserContextInfo
from .v1 import (
    access_service_pb2_grpc,
    audit_service_pb2_grpc,
    session_service_pb2_grpc,
    user_context_service_pb2_grpc,
)
from .watch import WatchStream

T = TypeVar("T")

#: Page size of the listings that read every page.
_ALL_PAGES_SIZE = 1000


class Client:
    """A sessiond client (sync).

    ::

        import sessiond

        with sessiond.Client("127.0.0.1:50051") as client:
            with client.clientless_session("R41") as session:
                session.open_module("100000", title="Projects")
                data = session.get_return_value("100000", timeout=5)
            print(client.get_session_user(session.session_id))

    Args:
        endpoint: ``HOST:PORT``, ``http://…`` or ``https://…``; ``None``:
            ``SESSIOND_ENDPOINT``, else ``127.0.0.1:50051``
            (:mod:`sessiond.connection`).
        token: a bearer token (static token, JWT, or a module run's
            ``SESSIOND_TOKEN``) sent with every call; ``None``:
            ``SESSIOND_TOKEN`` if set; ``""``: none.
        tls: TLS settings (CA, client certificate); with them a bare
            ``HOST:PORT`` means ``https://``.
        timeout: the deadline of each call in seconds; ``None``: none.
        retry: how reads are retried on ``UNAVAILABLE``.
        options: extra grpcio channel options.

    Methods may be called from several threads at once; they share the
    connection. ``close()`` (or leaving a ``with`` block) closes it.

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
            channel = grpc.insecure_channel(target.address, options=channel_options)
        else:
            channel = grpc.secure_channel(
                target.address, target.tls.credentials(), options=channel_options
            )
        self._setup(channel, bearer_metadata(token), timeout, retry or RetryPolicy())
        self.endpoint = target.address
        """The address the client dials."""

    @classmethod
    def from_channel(
        cls,
        channel: grpc.Channel,
        *,
        token: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        retry: Optional[RetryPolicy] = None,
    ) -> Client:
        """A client on an existing grpcio channel (which ``close()`` closes)."""
        client = cls.__new__(cls)
        client._setup(channel, bearer_metadata(token), timeout, retry or RetryPolicy())
        client.endpoint = ""
        return client

    def _setup(
        self,
        channel: grpc.Channel,
        metadata: Optional[tuple[tuple[str, str], ...]],
        timeout: Optional[float],
        retry: RetryPolicy,
    ) -> None:
        self._channel = channel
        self._metadata = metadata
        self._timeout = timeout
        self._retry = retry
        stubs: dict[str, Any] = {
            _rpcs.SESSIONS: session_service_pb2_grpc.SessionServiceStub(channel),
            _rpcs.CONTEXTS: user_context_service_pb2_grpc.UserContextServiceStub(channel),
            _rpcs.ACCESS: access_service_pb2_grpc.AccessServiceStub(channel),
            _rpcs.AUDIT: audit_service_pb2_grpc.AuditServiceStub(channel),
        }
        self._methods = {rpc.name: getattr(stubs[rpc.service], rpc.name) for rpc in _rpcs.UNARY_RPCS}
        self._watch = stubs[_rpcs.SESSIONS].WatchSessions

    # The connection ---------------------------------------------------------

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

    def close(self) -> None:
        """Closes the connection; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.endpoint!r}, timeout={self._timeout}, retry={self._retry})"

    def _run(self, plan: Plan[T]) -> T:
        """Sends one unary call: the deadline, the token, retries per the
        policy, and a failure decoded into its error."""
        method = self._methods[plan.rpc.name]
        timeout = self._timeout
        if timeout is not None:
            timeout += plan.extra_time
        attempt = 1
        while True:
            try:
                response = method(plan.request, timeout=timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                if attempt < self._retry.max_attempts and plan.rpc.kind.may_retry(error):
                    time.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise from_rpc_error(error, RequestSubject.of(plan.request)) from None
            return plan.decode(response)

    # Sessions ---------------------------------------------------------------

    def get_session_user(self, session_id: int) -> str:
        """The user a session belongs to (ended sessions too).

        Raises:
            SessionNotFoundError: when there is no such session (or the
                caller may not read it).
        """
        return self._run(_rpcs.get_session_user(session_id))

    def get_session_info(self, session_id: int) -> SessionInfo:
        """A session's record, ended or not.

        Raises:
            SessionNotFoundError: when there is no such session.
        """
        return self._run(_rpcs.get_session_info(session_id))

    def list_sessions_page(
        self,
        *,
        user: Optional[str] = None,
        kind: Optional[SessionKind] = None,
        state: Optional[SessionState] = None,
        page_size: int = 0,
        page_token: Optional[str] = None,
        states: Sequence[SessionState] = (),
    ) -> SessionPage:
        """One page of sessions, oldest first (``page_size`` 0: the server's
        default, 100; at most 1000). ``state`` and ``states`` together: a
        session in any of them.

        Raises:
            InvalidArgumentError: for a bad filter or page token.
        """
        return self._run(
            _rpcs.list_sessions_page(user, kind, state, page_size, page_token, states)
        )

    def list_sessions(
        self,
        *,
        user: Optional[str] = None,
        kind: Optional[SessionKind] = None,
        state: Optional[SessionState] = None,
        states: Sequence[SessionState] = (),
    ) -> list[SessionInfo]:
        """Every session that matches, oldest first (all pages; the caller
        sees only the sessions it may read).

        Raises:
            InvalidArgumentError: for a bad filter.
        """
        sessions: list[SessionInfo] = []
        token: Optional[str] = None
        while True:
            page = self.list_sessions_page(
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

    def start_session(self, user: str, client: str = "") -> SessionInfo:
        """Registers an interactive session for ``user`` (a client logged
        in); ``client`` describes it.

        Raises:
            InvalidArgumentError: for a bad user or client.
            TooManySessionsError: when the user has as many open sessions as
                the server allows.
        """
        return self._run(_rpcs.start_session(user, client))

    def touch_session(self, session_id: int) -> datetime.datetime:
        """Records activity on an open session; returns the activity time.

        Raises:
            SessionNotFoundError: when there is no such session.
            SessionEndedError: when it has ended.
        """
        return self._run(_rpcs.touch_session(session_id))

    def end_session(self, session_id: int) -> SessionInfo:
        """Ends a session (closed by client); a clientless one is closed
        gracefully with the server's default grace. Idempotent: an ended
        session's record is returned unchanged.

        Raises:
            SessionNotFoundError: when there is no such session.
        """
        return self._run(_rpcs.end_session(session_id))

    def open_clientless_session(self, user: str) -> SessionInfo:
        """Opens a clientless session on behalf of ``user``; it stays open
        until closed (or the server's idle timeout or maximum lifetime ends
        it). :meth:`clientless_session` closes it for you.

        Raises:
            InvalidArgumentError: for a bad user.
            TooManySessionsError: when the user has as many open sessions as
                the server allows.
        """
        return self._run(_rpcs.open_clientless_session(user))

    def close_clientless_session(self, session_id: int, grace: Optional[float] = None) -> SessionInfo:
        """Shuts a clientless session down gracefully and returns its ended
        record: no new modules; running ones get ``grace`` seconds
        (``None``: the server's default) to conclude, the rest are
        cancelled. Idempotent on an ended session.

        Raises:
            SessionNotFoundError: when there is no such session.
            SessionNotClientlessError: for an interactive session.
            InvalidArgumentError: for a grace over one hour.
        """
        return self._run(_rpcs.close_clientless_session(session_id, grace))

    def clientless_session(self, user: str, *, grace: Optional[float] = None) -> ClientlessSession:
        """A clientless session for ``user`` as a context manager (the seed's
        ``ClientlessSession('R41')``): opened on entering the ``with``
        block, closed on leaving it — also when the block raises — after its
        running modules concluded (within ``grace``)."""
        return ClientlessSession(self, user, grace=grace)

    # Modules ----------------------------------------------------------------

    def open_module(
        self,
        session_id: int,
        module_id: str,
        parameters: Optional[Mapping[str, Any]] = None,
    ) -> ModuleRun:
        """Starts a run of ``module_id`` in an open clientless session with
        ``parameters`` (a JSON object); returns once it is running.

        Raises:
            UnknownModuleError: for a module the server does not have.
            SessionNotFoundError: when there is no such session.
            SessionNotClientlessError, SessionClosingError, SessionEndedError:
                when the session cannot run modules.
            TooManyRunningModulesError: at the server's limit.
            InvalidArgumentError: for parameters that are not a JSON object.
        """
        return self._run(_rpcs.open_module(session_id, module_id, parameters))

    def get_return_value(self, session_id: int, module_id: str, timeout: float = 0.0) -> Any:
        """The return value of the latest run of ``module_id`` in a session,
        waiting up to ``timeout`` seconds for it to conclude (0: do not
        wait). The call's deadline is extended by the wait.

        Raises:
            ModuleFailedError: when the run failed or was cancelled (with the
                failure's kind, message, exit code, signal, stderr tail).
            ModuleStillRunningError: when it did not conclude in time (it
                goes on running).
            ModuleNotOpenedError: when the module was never opened there.
            SessionNotFoundError: when there is no such session.
        """
        return self._run(_rpcs.get_return_value(session_id, module_id, timeout))

    # User contexts ----------------------------------------------------------

    def get_user_context(self, session_id: int) -> UserContextInfo:
        """A session's current user context.

        Raises:
            SessionNotFoundError, SessionEndedError.
        """
        return self._run(_rpcs.get_user_context(session_id))

    def set_user_context(self, session_id: int, user: str) -> str:
        """Replaces a session's user context; returns the previous one. A
        later restore of an enclosing scope still restores what was there
        before that scope.

        Raises:
            SessionNotFoundError, SessionEndedError, InvalidArgumentError,
            PermissionDeniedError (``act_as``).
        """
        return self._run(_rpcs.set_user_context(session_id, user))

    def push_user_context(self, session_id: int, user: str) -> PushedScope:
        """Opens a scope acting as ``user``; pop it with its ``scope_id``.
        :meth:`user_context` does both.

        Raises:
            SessionNotFoundError, SessionEndedError, InvalidArgumentError,
            PermissionDeniedError (``act_as``).
        """
        return self._run(_rpcs.push_user_context(session_id, user))

    def pop_user_context(self, session_id: int, scope_id: int) -> PoppedScope:
        """Closes the innermost scope, restoring exactly the user context
        from before its push.

        Raises:
            ScopeNotInnermostError: when another scope was pushed after it.
            ScopeNotFoundError: when it is not open in the session.
        """
        return self._run(_rpcs.pop_user_context(session_id, scope_id))

    def user_context(self, session_id: int, user: str) -> UserContextScope:
        """A scope acting as ``user`` in a session, as a context manager (the
        seed's ``UserContext('R41')``): pushed on entering the ``with``
        block, popped — exactly this scope — on leaving it."""
        return UserContextScope(self, session_id, user)

    # Access -----------------------------------------------------------------

    def who_am_i(self) -> WhoAmI:
        """Who the server takes the caller to be."""
        return self._run(_rpcs.who_am_i())

    def check_access(
        self,
        permission: Permission,
        *,
        session_id: Optional[int] = None,
        user: Optional[str] = None,
        module_id: Optional[str] = None,
    ) -> AccessDecision:
        """Whether the caller may take an action, without taking it (true
        when allowed; ``reason`` says why not).

        Raises:
            InvalidArgumentError: when the action lacks what it applies to.
        """
        return self._run(_rpcs.check_access(permission, session_id, user, module_id))

    # Audit ------------------------------------------------------------------

    def list_events_page(
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
        """One page of the audit trail (needs ``read_audit``); unset filters
        match everything.

        Raises:
            PermissionDeniedError: without ``read_audit``.
            RevisionCompactedError: for an ``after_revision`` no longer kept.
        """
        return self._run(
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

    def list_events(
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
    ) -> Iterator[Event]:
        """Every matching event of the audit trail, page after page as the
        iterator is read.

        Raises:
            PermissionDeniedError: without ``read_audit`` (when read).
        """
        kinds = list(kinds)
        token: Optional[str] = None
        while True:
            page = self.list_events_page(
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
            yield from page.events
            token = page.next_page_token
            if token is None:
                return

    def verify_ledger(self, from_revision: int = 0, to_revision: int = 0) -> LedgerVerification:
        """Recomputes the event log's hash chain over a range (0: the oldest
        retained / the head); true when it holds.

        Raises:
            PermissionDeniedError: without ``read_audit``.
        """
        return self._run(_rpcs.verify_ledger(from_revision, to_revision))

    def get_checkpoint(self) -> Checkpoint:
        """The log's head and compaction checkpoint.

        Raises:
            PermissionDeniedError: without ``read_audit``.
        """
        return self._run(_rpcs.get_checkpoint())

    # Watching ---------------------------------------------------------------

    def watch_sessions(
        self,
        *,
        after_revision: int = 0,
        user: Optional[str] = None,
        session_id: Optional[int] = None,
        initial_state: bool = False,
        retry: Optional[RetryPolicy] = None,
    ) -> WatchStream:
        """Watches sessions: an iterator over the changes to the sessions
        the caller may read (``Event``), in revision order, as they are
        committed, with ``WatchProgress`` when there are none for a while;
        with ``initial_state``, first the open sessions (``SESSION_SNAPSHOT``
        events) and ``InitialStateEnd``. It never ends by itself: ``close()``
        it (or use it as a context manager) to stop.

        When the server ends the watch with ``UNAVAILABLE`` (too slow,
        shutting down) or the connection drops, it connects again (with the
        backoff of ``retry``, else the client's policy) and resumes after
        the last revision it delivered, so that no change is missed or
        delivered twice; the initial state is never sent again once
        delivered. It gives up after as many failed attempts in a row as the
        policy allows, raising the last error.

        Raises:
            RevisionCompactedError: when the changes after ``after_revision``
                are no longer kept (start again with ``initial_state``).
            InvalidArgumentError: for ``initial_state`` with an
                ``after_revision``.
            PermissionDeniedError, UnauthenticatedError.
        """
        return WatchStream(
            self._watch,
            self._metadata,
            after_revision=after_revision,
            user=user,
            session_id=session_id,
            initial_state=initial_state,
            retry=retry or self._retry,
        )
