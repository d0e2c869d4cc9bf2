"""Operations on nio's live key store that nio has no call for: renewing a room's key, asking for members'
devices again, dropping every key of a room this device leaves for good. They reach into nio's internals
(its Olm machine and its peewee tables), so they live here, each in one place, checked by the tests that
use them (tests/test_new_devices.py, tests/test_bot_e2ee.py)."""
from __future__ import annotations

from nio import AsyncClient


def renew_room_key(client: AsyncClient, room_id: str) -> None:
    """The next message in the room goes with a new room key: those who left do not get it."""
    if client.olm:
        client.olm.outbound_group_sessions.pop(room_id, None)


def ask_devices(client: AsyncClient, users: set[str]) -> None:
    """At the next key upkeep, ask the homeserver for these users' devices (a device added since is learnt)."""
    if client.olm and users:
        client.olm.users_for_key_query.update(users)


def devices_of(client: AsyncClient, users: set[str]) -> set[tuple[str, str]]:
    """The devices nio knows for `users`, as (user id, device id)."""
    return {(u, d.id) for u in users for d in client.device_store.active_user_devices(u)}


def drop_room_keys(client: AsyncClient, room_id: str) -> None:
    """Every key this device holds for the room, in memory and on disk: nothing of it can be read again here."""
    from nio.store.models import MegolmInboundSessions

    if not client.olm:
        return
    client.olm.outbound_group_sessions.pop(room_id, None)
    client.olm.inbound_group_store._entries.pop(room_id, None)
    store = client.store
    with store.database.bind_ctx(store.models):
        MegolmInboundSessions.delete().where(MegolmInboundSessions.room_id == room_id).execute()
