"""``sessiond.aio.Client``: the sync client's behaviour over grpc.aio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

import sessiond
import sessiond.aio

from .servers import Server, unique_user

T = TypeVar("T")


def run(coroutine: Awaitable[T]) -> T:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_the_seeds_examples_with_async_with(server: Server) -> None:
    async def main() -> None:
        async with sessiond.aio.Client(server.endpoint) as client:
            user = unique_user("R41")
            async with client.clientless_session(user) as session:
                await session.open_module("100000", title="async")
                data = await session.get_return_value("100000", timeout=10)
                async with session.user_context("R42") as scope:
                    assert scope.previous_user == user
                    assert (await client.get_user_context(session.session_id)).user == "R42"
                assert (await client.get_user_context(session.session_id)).user == user
            assert data["title"] == "async" and data["user"] == user
            assert (await client.get_session_info(session.session_id)).state is sessiond.SessionState.ENDED
            assert await client.get_session_user(session.session_id) == user

    run(main())


def test_errors_are_the_sync_clients(server: Server) -> None:
    async def main() -> None:
        async with sessiond.aio.Client(server.endpoint) as client:
            with pytest.raises(sessiond.SessionNotFoundError) as raised:
                await client.get_session_info(2**62)
            assert raised.value.session_id == 2**62
            async with client.clientless_session(unique_user("R41")) as session:
                await session.open_module("slow", seconds=30)
                with pytest.raises(sessiond.ModuleStillRunningError):
                    await session.get_return_value("slow", timeout=0.1)
                with pytest.raises(sessiond.ScopeNotFoundError):
                    await client.pop_user_context(session.session_id, 2**40)
                await client.close_clientless_session(session.session_id, grace=0)
            with pytest.raises(sessiond.ModuleFailedError) as cancelled:
                await client.get_return_value(session.session_id, "slow")
            assert cancelled.value.state is sessiond.RunState.CANCELLED

    run(main())


def test_a_block_that_raises_still_closes_its_session(server: Server) -> None:
    async def main() -> int:
        async with sessiond.aio.Client(server.endpoint) as client:
            with pytest.raises(ValueError):
                async with client.clientless_session(unique_user("R41")) as session:
                    raise ValueError("in the block")
            return (await client.get_session_info(session.session_id)).end_reason is sessiond.EndReason.CLOSED_BY_CLIENT

    assert run(main())


def test_every_other_rpc(server: Server) -> None:
    async def main() -> None:
        async with sessiond.aio.Client(server.endpoint) as client:
            user = unique_user("R41")
            started = await client.start_session(user, "aio")
            await client.touch_session(started.session_id)
            assert [s.session_id for s in await client.list_sessions(user=user)] == [started.session_id]
            page = await client.list_sessions_page(user=user, page_size=1)
            assert page.next_page_token is None
            assert await client.set_user_context(started.session_id, "R42") == user
            pushed = await client.push_user_context(started.session_id, "R43")
            assert (await client.pop_user_context(started.session_id, pushed.scope_id)).user == "R42"
            assert (await client.end_session(started.session_id)).state is sessiond.SessionState.ENDED
            opened = await client.open_clientless_session(user)
            run = await client.open_module(opened.session_id, "whoami")
            assert run.acting_user == user
            assert (await client.get_return_value(opened.session_id, "whoami", timeout=10))["user"] == user
            await client.close_clientless_session(opened.session_id)
            assert (await client.who_am_i()).subject == "anonymous"
            assert (await client.check_access(sessiond.Permission.READ_AUDIT)).allowed
            events = [e async for e in client.list_events(user=user)]
            assert events[0].kind is sessiond.EventKind.SESSION_STARTED
            assert (await client.list_events_page(user=user, page_size=2)).next_page_token
            assert await client.verify_ledger()
            assert (await client.get_checkpoint()).head_revision >= events[-1].revision

    run(main())


def test_a_watch_is_an_async_iterator(server: Server) -> None:
    async def main() -> list[sessiond.EventKind]:
        async with sessiond.aio.Client(server.endpoint) as client:
            user = unique_user("R41")
            kinds: list[sessiond.EventKind] = []
            async with client.watch_sessions(user=user) as watch:
                first = await watch.__anext__()
                assert isinstance(first, sessiond.WatchProgress)
                session = await client.open_clientless_session(user)
                await client.close_clientless_session(session.session_id)
                async for item in watch:
                    if isinstance(item, sessiond.Event):
                        kinds.append(item.kind)
                        if item.kind is sessiond.EventKind.SESSION_ENDED:
                            break
            return kinds

    kinds = run(main())
    assert kinds == [sessiond.EventKind.CLIENTLESS_SESSION_OPENED, sessiond.EventKind.SESSION_ENDED]
