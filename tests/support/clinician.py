"""A clinician's Matrix client for the tests: real nio, real E2EE, event-driven waits."""
from __future__ import annotations

import asyncio
import contextlib
import io
import time
from pathlib import Path

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    InviteMemberEvent,
    LoginResponse,
    MegolmEvent,
    ReactionEvent,
    RoomMemberEvent,
    RoomMessage,
    UploadResponse,
)

ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


class Clinician:
    def __init__(self, homeserver: str, user_id: str, password: str, store: Path, auto_join: bool = True):
        store.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.auto_join = auto_join
        self.client = AsyncClient(homeserver, user_id, store_path=str(store),
                                  config=AsyncClientConfig(encryption_enabled=True))
        self.events: list[tuple[str, object]] = []
        self.stamped: list[tuple[float, str, object]] = []   # (perf_counter() when synced, room, event)
        self.undecryptable = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self.client.add_event_callback(self._on_event, (RoomMessage, RoomMemberEvent, MegolmEvent, ReactionEvent))
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)

    @property
    def user_id(self) -> str:
        return self.client.user_id

    async def start(self) -> "Clinician":
        resp = await self.client.login(self.password, device_name="tests")
        assert isinstance(resp, LoginResponse), resp
        await self.client.sync(timeout=0, full_state=True)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self._task = asyncio.create_task(self._sync())
        return self

    async def _sync(self) -> None:
        """Keep syncing through a homeserver restart (nio's loop ends on the first unexpected error)."""
        while True:
            try:
                await self.client.sync_forever(timeout=5000)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    async def _on_event(self, room, event) -> None:
        if isinstance(event, MegolmEvent):
            self.undecryptable += 1
        self.events.append((room.room_id, event))
        self.stamped.append((time.perf_counter(), room.room_id, event))
        async with self._changed:
            self._changed.notify_all()

    async def _on_invite(self, room, event) -> None:
        if self.auto_join and event.state_key == self.user_id and event.membership == "invite":
            await self.client.join(room.room_id)

    async def wait_for(self, predicate, timeout: float = 30.0):
        """The first event (room_id, event) matching predicate, seen before or after the call."""
        async def scan():
            async with self._changed:
                while True:
                    for room_id, event in self.events:
                        if predicate(room_id, event):
                            return event
                    await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    async def create_room(self, invite: list[str], encrypted: bool = True, name: str = "Test") -> str:
        state = [ENCRYPTION] if encrypted else []
        state.append({"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}})
        resp = await self.client.room_create(name=name, invite=invite, initial_state=state)
        assert not isinstance(resp, ErrorResponse), resp
        return resp.room_id

    async def wait_joined(self, room_id: str, user_id: str, timeout: float = 30.0) -> None:
        await self.wait_for(lambda r, e: r == room_id and isinstance(e, RoomMemberEvent)
                            and e.state_key == user_id and e.membership == "join", timeout)
        # nio must see the member before it shares the room key with their device.
        while user_id not in self.client.rooms[room_id].users:
            await asyncio.sleep(0.05)
        self.client.rooms[room_id].members_synced = False

    async def send(self, room_id: str, text: str) -> str:
        for _ in range(200):   # a room just joined is known after the next sync
            if room_id in self.client.rooms:
                break
            await asyncio.sleep(0.05)
        if self.client.should_query_keys:
            await self.client.keys_query()
        resp = await self.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text},
                                           ignore_unverified_devices=True)
        assert not isinstance(resp, ErrorResponse), resp
        return resp.event_id

    async def send_file(self, room_id: str, data: bytes, filename: str, mime: str, *, msgtype: str = "m.file",
                        declared_size: int | None = None, thread_root: str | None = None) -> str:
        """Upload a file encrypted (as Element does in an encrypted room) and post its event."""
        # As Element does: no name and no real type in the upload (they would be in clear at the homeserver).
        resp, keys = await self.client.upload(io.BytesIO(data), content_type="application/octet-stream",
                                              encrypt=True, filesize=len(data))
        assert isinstance(resp, UploadResponse), resp
        content = {"msgtype": msgtype, "body": filename, "filename": filename,
                   "info": {"mimetype": mime, "size": len(data) if declared_size is None else declared_size},
                   "file": {**keys, "url": resp.content_uri}}
        if thread_root:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root}
        if self.client.should_query_keys:
            await self.client.keys_query()
        sent = await self.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
        assert not isinstance(sent, ErrorResponse), sent
        return sent.event_id

    async def wait_reply(self, room_id: str, to_event: str, timeout: float = 30.0):
        def is_reply(r, e):
            if r != room_id or not isinstance(e, RoomMessage):
                return False
            relates = e.source.get("content", {}).get("m.relates_to") or {}
            return (relates.get("m.in_reply_to") or {}).get("event_id") == to_event
        return await self.wait_for(is_reply, timeout)

    def replies_to(self, room_id: str, to_event: str) -> list:
        out = []
        for r, e in self.events:
            relates = getattr(e, "source", {}).get("content", {}).get("m.relates_to") or {}
            if r == room_id and (relates.get("m.in_reply_to") or {}).get("event_id") == to_event:
                out.append(e)
        return out

    async def ask(self, room_id: str, text: str, timeout: float = 30.0, attempts: int = 1):
        """Send and wait for the reply; resend while the bot cannot yet read us (keys not shared yet)."""
        for attempt in range(attempts):
            event_id = await self.send(room_id, text)
            try:
                return await self.wait_reply(room_id, event_id, timeout / attempts), event_id
            except asyncio.TimeoutError:
                if attempt == attempts - 1:
                    raise
