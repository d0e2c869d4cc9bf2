"""The bridge's own Matrix account: logged in once (its session kept), then synced for room keys and invitations."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from bridge import read_receipts
from bridge.homeserver import AppserviceApi
from bridge.store import BridgeStore
from liaison.clock import Clock
from liaison.matrix import Matrix, MatrixError
from liaison.stores.roster import Roster

log = structlog.get_logger("bridge")


class SyncPorts(read_receipts.ReadReceiptsPorts, Protocol):
    """What the bridge's own sync uses: its account, the clock, the team (who may invite it), the receipts read."""

    @property
    def clock(self) -> Clock: ...

    @property
    def roster(self) -> Roster: ...


async def sync_loop(d: SyncPorts, store: BridgeStore, since: str | None, ready: asyncio.Event,
                    catching_up: Callable[[], Coroutine[Any, Any, int]]) -> None:
    """The bridge's own account: room keys arrive here, and invitations from the bot. At its first sync, and at
    the first one after the homeserver was away, the rooms' last messages are read back (bridge/catch_up.py)."""
    first, away = True, True
    background: set[asyncio.Task[int]] = set()
    while True:
        try:   # the first sync returns at once: being ready must not wait for a long poll to run out
            batch = await d.matrix.sync(since, 0 if first else 30_000)
        except (MatrixError, OSError, asyncio.TimeoutError) as err:
            log.warning("bridge.sync_failed", error=str(err)[:200])
            away = True
            await d.clock.sleep(2)
            continue
        if away:   # in the background: the sync goes on (room keys for what it reads come by it)
            task = asyncio.create_task(catching_up())
            background.add(task)
            task.add_done_callback(background.discard)
            away = False
        for invite in batch.invites:
            member = await d.roster.get(invite.inviter) if invite.inviter else None
            try:
                if invite.inviter == d.settings.bot_user_id or (member and member.coordinator):
                    await d.matrix.join(invite.room_id)
                else:
                    await d.matrix.leave(invite.room_id)
            except MatrixError as err:
                log.warning("bridge.invite_failed", room_id=invite.room_id, error=str(err)[:200])
        if batch.receipts:
            try:
                await read_receipts.on_read(d, batch.receipts)
            except Exception:   # noqa: BLE001 — a receipt that cannot be handled never stops the sync
                log.exception("bridge.receipts_failed")
        await store.save_sync_token(d.matrix.user_id, batch.next_batch)
        since, first = batch.next_batch, False
        store.new_events.ring()   # a room key may have come for an event waiting to be read
        ready.set()


async def account(api: AppserviceApi, store: BridgeStore, matrix: Matrix, localpart: str) -> str | None:
    saved = await store.account(matrix.user_id)
    if saved is None:
        await api.register(localpart)
        session = await api.login(matrix.user_id, "Liaison MSSanté")
        await store.save_session(session)
        await matrix.login("", session)
        await matrix.set_display_name("Passerelle MSSanté")
        return None
    await matrix.login("", saved.session)
    return saved.sync_token
