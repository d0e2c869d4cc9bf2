"""Puppets: one Matrix account per external MSSanté address, each with its own E2EE device.

A puppet never syncs: it only posts what its professional sent by mail. Before each post
it asks who is in the room, so the room key reaches every member's device.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from pathlib import Path

import structlog

from bridge.homeserver import AppserviceApi
from bridge.store import BridgeStore, Puppet
from liaison.matrix import Matrix, MatrixError

log = structlog.get_logger(__name__)

SUFFIX = " (MSSanté)"
_OPEN_MAX = 64


def puppet_localpart(prefix: str, address: str) -> str:
    """`mss_c.lefebvre=40chu-demo.mssante.test`: readable, reversible enough, within Matrix's alphabet."""
    escaped = re.sub(r"[^a-z0-9._-]", lambda m: "=%02x" % ord(m.group()), address.lower())
    local = prefix + escaped
    if len(local) > 200 or any(ord(c) > 127 for c in address):
        local = prefix + "h" + hashlib.sha256(address.lower().encode()).hexdigest()[:24]
    return local


def puppet_display_name(name: str, address: str) -> str:
    base = " ".join((name or "").split())[:80] or address
    return base + SUFFIX


class Puppets:
    def __init__(self, api: AppserviceApi, store: BridgeStore, *, homeserver: str, server_name: str,
                 store_dir: Path, bridge: Matrix, prefix: str) -> None:
        self.api, self.store, self.bridge = api, store, bridge
        self.homeserver, self.server_name, self.prefix = homeserver, server_name, prefix
        self.store_dir = Path(store_dir) / "puppets"
        self._open: OrderedDict[str, Matrix] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def is_puppet(self, user_id: str) -> bool:
        return user_id.startswith("@" + self.prefix) and user_id != self.bridge.user_id

    async def get(self, address: str, name: str) -> tuple[Puppet, Matrix]:
        address = address.lower()
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock:
            puppet = await self.store.puppet(address)
            display = puppet_display_name(name, address)
            if puppet is None or (name and puppet.display_name != display):
                puppet = await self._make(address, display, puppet)
            matrix = self._open.get(address)
            if matrix is None:
                matrix = await self._login(puppet)
            self._open[address] = matrix
            self._open.move_to_end(address)
            while len(self._open) > _OPEN_MAX:
                _, old = self._open.popitem(last=False)
                await old.close()
            return puppet, matrix

    async def _make(self, address: str, display: str, known: Puppet | None) -> Puppet:
        user_id = known.user_id if known else f"@{puppet_localpart(self.prefix, address)}:{self.server_name}"
        if known is None:
            await self.api.register(user_id[1:].split(":")[0])
        puppet = Puppet(address, user_id, display)
        matrix = self._open.get(address) or await self._login(puppet)
        self._open[address] = matrix
        await matrix.set_display_name(display)
        await self.store.add_puppet(puppet)
        log.info("puppet.ready", user_id=user_id, new=known is None)
        return puppet

    async def _login(self, puppet: Puppet) -> Matrix:
        saved = await self.store.account(puppet.user_id)
        matrix = Matrix(self.homeserver, puppet.user_id, self.store_dir / puppet.user_id[1:].split(":")[0],
                        device_name="Liaison MSSanté")
        if saved is None:
            session = await self.api.login(puppet.user_id, "Liaison MSSanté")
            await matrix.login("", session)
            await self.store.save_session(session)
        else:
            await matrix.login("", saved.session)
        return matrix

    async def join(self, puppet: Puppet, matrix: Matrix, room_id: str) -> None:
        """The bridge's account invites the puppet, which joins; remembered once done."""
        if await self.store.puppet_in_room(puppet.user_id, room_id):
            return
        try:
            await self.bridge.invite(room_id, puppet.user_id)
        except MatrixError as err:
            if "already in the room" not in str(err) and "M_FORBIDDEN" not in str(err):
                raise
        await matrix.join(room_id)
        await self.store.add_puppet_room(puppet.user_id, room_id)

    async def close(self) -> None:
        for matrix in self._open.values():
            await matrix.close()
        self._open.clear()
