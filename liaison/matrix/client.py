"""The Matrix client: nio's calls, each `Response | ErrorResponse` turned into a plain result or `MatrixError`,
and a sync into a small batch of what the services care about (invites, messages, files, memberships).

With liaison/matrix/keys.py (operations on nio's live key store), the only code that imports nio.
"""
from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path

import structlog
from nio import (
    AsyncClient,
    Event,
    JoinedMembersResponse,
    AsyncClientConfig,
    ErrorResponse,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomSendResponse,
    UploadResponse,
    SyncResponse,
)
from nio.exceptions import EncryptionError
from nio.rooms import MatrixRoom

from liaison.matrix import keys, timeline
from liaison.matrix.content import file_content
from liaison.matrix.errors import FileTooBig, KeysMissing, MatrixError
from liaison.matrix.events import PushedMessage, Session, SyncBatch, pushed_message
from liaison.matrix.sync import SYNC_FILTER, Waiting, read_sync

log = structlog.get_logger(__name__)

class Matrix:
    """An end-to-end-encrypting Matrix client for one account."""

    def __init__(self, homeserver: str, user_id: str, store_dir: str | Path, device_name: str = "Liaison",
                 sync_filter: dict | None = None, *, pickle_key: str, federate: bool = False):
        Path(store_dir).mkdir(parents=True, exist_ok=True)
        self.device_name = device_name
        self.federate = federate   # the rooms this account creates: joinable from other homeservers or not
        self._user_id = user_id   # nio leaves client.user_id empty until a login
        self.client = AsyncClient(
            homeserver, user_id, store_path=str(store_dir),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False,
                                     max_timeouts=None, request_timeout=90, pickle_key=pickle_key),
        )
        self._keys_lock = asyncio.Lock()
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._waiting = Waiting()
        self._filter_id: str | None = None
        self._sync_filter = sync_filter or SYNC_FILTER

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def device_id(self) -> str:
        return self.client.device_id

    async def login(self, password: str, saved: Session | None) -> Session:
        """Reuse the saved device (and its keys) when there is one; else log in with the password."""
        if saved and saved.user_id == self._user_id:
            self.client.restore_login(saved.user_id, saved.device_id, saved.access_token)
            return saved
        resp = await self.client.login(password, device_name=self.device_name)
        if not isinstance(resp, LoginResponse):
            raise MatrixError("login", resp)
        return Session(resp.user_id, resp.device_id, resp.access_token)

    async def sync(self, since: str | None, timeout_ms: int) -> SyncBatch:
        if self._filter_id is None:
            resp = await self.client.upload_filter(**self._sync_filter)
            self._filter_id = getattr(resp, "filter_id", None) or ""
        await self._keys_upkeep()
        resp = await self.client.sync(timeout=timeout_ms, sync_filter=self._filter_id or None,
                                      since=since or None)
        if not isinstance(resp, SyncResponse):
            raise MatrixError("sync", resp)
        return read_sync(resp, self.user_id, self._waiting, self.client.decrypt_event)
        # key upkeep waits for the next sync or send: answers come first

    def pending(self) -> dict[str, tuple[str, dict]]:
        """The synced events still waiting for their room key: event id -> (room id, the event as synced)."""
        return self._waiting.as_sources()

    def restore_pending(self, events: list[tuple[str, dict]]) -> None:
        """Events kept from before a restart: decrypted (and handed over) as soon as their key is here."""
        self._waiting.restore(events)

    def _room_keys(self, room_id: str) -> asyncio.Lock:
        """One send or renewal of a room's key at a time: nio shares a new key over several awaits, and a renewal
        in between (a member removed) dropped the session being shared, failing that send outside any Matrix error.
        A renewal waits for the send in flight, so the next message goes with a key those removed never get."""
        return self._room_locks.setdefault(room_id, asyncio.Lock())

    async def _keys_upkeep(self) -> None:
        c = self.client
        async with self._keys_lock:
            if c.should_upload_keys:
                await c.keys_upload()
            if c.should_query_keys:
                await c.keys_query()
            if c.should_claim_keys:
                await c.keys_claim(c.get_users_for_key_claiming())
            await c.send_to_device_messages()

    async def join(self, room_id: str) -> None:
        resp = await self.client.join(room_id)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("join", resp)

    async def leave(self, room_id: str) -> None:
        resp = await self.client.room_leave(room_id)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("leave", resp)

    async def send(self, room_id: str, content: dict, txn_id: str) -> str:
        """Send a message, encrypted when the room is; the same txn_id never posts twice."""
        await self._ensure_room(room_id)
        await self._keys_upkeep()
        async with self._room_keys(room_id):
            resp = await self.client.room_send(room_id, "m.room.message", content, tx_id=txn_id,
                                               ignore_unverified_devices=True)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("send", resp)
        return resp.event_id

    async def _ensure_room(self, room_id: str) -> None:
        """After a restart nio only knows rooms seen since: ask the server whether one is encrypted."""
        if room_id in self.client.rooms:
            return
        encrypted = room_id in self.client.encrypted_rooms
        if not encrypted:
            resp = await self.client.room_get_state_event(room_id, "m.room.encryption")
            if isinstance(resp, ErrorResponse) and resp.status_code != "M_NOT_FOUND":
                raise MatrixError("room state", resp)
            encrypted = isinstance(resp, RoomGetStateEventResponse)
        self.client.rooms[room_id] = MatrixRoom(room_id, self.user_id, encrypted)
        if encrypted:
            self.client.encrypted_rooms.add(room_id)

    async def create_room(self, *, name: str, topic: str, initial_state: list[dict],
                          power_levels: dict | None, invite: Sequence[str] = (), space: bool = False) -> str:
        """A private room (or space) made by this account; encryption is known at once for sending."""
        resp = await self.client.room_create(name=name, topic=topic, invite=list(invite),
                                             initial_state=initial_state, power_level_override=power_levels or None,
                                             space=space, federate=self.federate)
        if not isinstance(resp, RoomCreateResponse):
            raise MatrixError("create room", resp)
        encrypted = any(ev.get("type") == "m.room.encryption" for ev in initial_state)
        room = MatrixRoom(resp.room_id, self.user_id, encrypted)
        for user_id in invite:
            room.add_member(user_id, None, None, invited=True)
        self.client.rooms[resp.room_id] = room
        if encrypted:
            self.client.encrypted_rooms.add(resp.room_id)
        return resp.room_id

    async def invite(self, room_id: str, user_id: str) -> None:
        resp = await self.client.room_invite(room_id, user_id)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("invite", resp)
        room = self.client.rooms.get(room_id)
        if room is not None:
            room.add_member(user_id, None, None, invited=True)

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        """Remove a member; what this device sends next is encrypted for the others only, even before the
        sync that reports the leave."""
        resp = await self.client.room_kick(room_id, user_id, reason)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("kick", resp)
        async with self._room_keys(room_id):
            room = self.client.rooms.get(room_id)
            if room is not None and user_id in room.users:
                room.remove_member(user_id)
            keys.renew_room_key(self.client, room_id)

    async def member_devices(self, room_id: str, users: set[str]) -> set[tuple[str, str]]:
        """The current devices of `users` (asked to the homeserver now), as (user id, device id)."""
        if not self.client.olm or not users:
            return set()
        keys.ask_devices(self.client, users)
        await self._keys_upkeep()
        return keys.devices_of(self.client, users)

    async def members(self, room_id: str) -> set[str]:
        """Who is joined to, or invited into, the room now, as the homeserver says."""
        resp = await self.client.room_get_state(room_id)
        if not isinstance(resp, RoomGetStateResponse):
            raise MatrixError("room state", resp)
        return {ev["state_key"] for ev in resp.events if ev.get("type") == "m.room.member"
                and (ev.get("content") or {}).get("membership") in ("join", "invite")}

    async def joined(self, room_id: str) -> set[str]:
        """Who is joined to the room now, as the homeserver says."""
        resp = await self.client.joined_members(room_id)
        if not isinstance(resp, JoinedMembersResponse):
            raise MatrixError("joined members", resp)
        return {m.user_id for m in resp.members}

    async def send_to_current_devices(self, room_id: str, content: dict, txn_id: str) -> tuple[str, frozenset]:
        """Send (encrypted) and say which devices hold the key of that message: (event id, {(user, device)}).

        The room key is shared before the send, then the message is encrypted with no pause in between,
        so the set is exactly the devices that can read this event.
        """
        await self._ensure_room(room_id)
        await self._keys_upkeep()
        c = self.client
        room = c.rooms[room_id]
        readers: frozenset = frozenset()
        async with self._room_keys(room_id):
            if room.encrypted and c.olm:
                if not room.members_synced:
                    resp = await c.joined_members(room_id)
                    if not isinstance(resp, JoinedMembersResponse):
                        raise MatrixError("joined members", resp)
                    await self._keys_upkeep()
                if c.olm.should_share_group_session(room_id):
                    await c.share_group_session(room_id, ignore_unverified_devices=True)
                readers = frozenset(c.olm.outbound_group_sessions[room_id].users_shared_with)
            resp = await c.room_send(room_id, "m.room.message", content, tx_id=txn_id,
                                     ignore_unverified_devices=True)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("send", resp)
        return resp.event_id, readers

    async def event_origin(self, room_id: str, event_id: str) -> tuple[str, int] | None:
        """Who sent an event and when (origin_server_ts, ms); None when this account cannot see it."""
        resp = await self.client.room_get_event(room_id, event_id)
        if isinstance(resp, ErrorResponse):
            if resp.status_code in ("M_NOT_FOUND", "M_FORBIDDEN"):
                return None
            raise MatrixError("event", resp)
        return resp.event.sender, int(getattr(resp.event, "server_timestamp", 0) or 0)

    def rooms_with(self, user_id: str) -> list[str]:
        """The rooms this account knows `user_id` to be a member of."""
        return [r.room_id for r in self.client.rooms.values() if user_id in r.users]

    def synced_members(self, room_id: str) -> set[str] | None:
        """Who is joined to, or invited into, the room as of the last sync (None: a room this account has not synced).
        A command is read after the sync that brought it has been applied: every membership change before it is
        in (the sync filter loads every member, not lazily)."""
        room = self.client.rooms.get(room_id)
        return set(room.users) if room is not None else None

    async def set_state(self, room_id: str, event_type: str, content: dict, state_key: str = "") -> str:
        resp = await self.client.room_put_state(room_id, event_type, content, state_key)
        if isinstance(resp, ErrorResponse):
            raise MatrixError(f"state {event_type}", resp)
        return resp.event_id

    async def state(self, room_id: str) -> list[dict]:
        resp = await self.client.room_get_state(room_id)
        if not isinstance(resp, RoomGetStateResponse):
            raise MatrixError("room state", resp)
        return resp.events

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> dict | None:
        resp = await self.client.room_get_state_event(room_id, event_type, state_key)
        if isinstance(resp, RoomGetStateEventResponse):
            return resp.content
        if resp.status_code == "M_NOT_FOUND":
            return None
        raise MatrixError(f"state {event_type}", resp)

    async def display_name(self, user_id: str) -> str | None:
        """The account's display name (its id when it has none); None when no such account exists."""
        resp = await self.client.get_displayname(user_id)
        if isinstance(resp, ErrorResponse):
            if resp.status_code in ("M_NOT_FOUND", "M_UNKNOWN"):
                return None
            raise MatrixError("profile", resp)
        return resp.displayname or user_id

    async def history(self, room_id: str, max_events: int = 100_000) -> list[dict]:
        """The room's messages, oldest first, decrypted where this device holds the keys."""
        return await timeline.history(self.client, room_id, max_events)

    async def recent_events(self, room_id: str, since_ms: int, limit: int) -> list[dict]:
        """The room's timeline events sent since `since_ms`, as the homeserver gives them (encrypted ones too)."""
        return await timeline.recent(self.client, room_id, since_ms, limit)

    async def joined_rooms(self) -> list[str]:
        resp = await self.client.joined_rooms()
        if isinstance(resp, ErrorResponse):
            raise MatrixError("joined rooms", resp)
        return list(resp.rooms)

    async def send_file(self, room_id: str, data: bytes, filename: str, mime: str, txn_id: str) -> str:
        """Upload encrypted (the key travels only inside the encrypted event) and post it."""
        return await self.send(room_id, file_content(filename, mime, len(data), await self.upload_encrypted(data)),
                               txn_id)

    async def forget_room(self, room_id: str) -> None:
        """Leave, forget, and drop every room key this device holds for the room."""
        for step in (self.client.room_leave, self.client.room_forget):
            resp = await step(room_id)
            if isinstance(resp, ErrorResponse) and resp.status_code not in ("M_NOT_FOUND", "M_UNKNOWN"):
                raise MatrixError("forget", resp)
        async with self._room_keys(room_id):
            keys.drop_room_keys(self.client, room_id)
            self.client.rooms.pop(room_id, None)
        self._room_locks.pop(room_id, None)

    def read_pushed(self, event: dict) -> PushedMessage | None:
        """An event as the homeserver pushed it: decrypted when it can be, None when not a room message."""
        if event.get("type") not in ("m.room.message", "m.room.encrypted") or "state_key" in event:
            return None
        parsed = Event.parse_event(event)
        if isinstance(parsed, MegolmEvent):
            parsed.room_id = event.get("room_id", "")
            try:
                parsed = self.client.decrypt_event(parsed)
            except EncryptionError:
                raise KeysMissing(event.get("event_id", "")) from None
        source = getattr(parsed, "source", None) or {}
        content = source.get("content") or {}
        if source.get("type", "m.room.message") != "m.room.message" or not isinstance(content, dict):
            return None
        return pushed_message(event, content)

    async def refresh_members(self, room_id: str) -> None:
        """For an account that does not sync (a puppet): learn who is in the room, and their devices, before sending.

        Such an account never hears of a new device (device lists come with a sync), so every member's
        keys are asked again: a device added since the last post gets the room key of the next one
        (nio renews the session when a member's devices changed). When the members changed, the room
        key is renewed too: newcomers read what follows, and those who left (an objection, a closure) do not.
        """
        await self._ensure_room(room_id)
        resp = await self.client.joined_members(room_id)
        if not isinstance(resp, JoinedMembersResponse):
            raise MatrixError("joined members", resp)
        room = self.client.rooms[room_id]
        now = {m.user_id for m in resp.members}
        known = getattr(room, "_liaison_members", None)
        if known is not None and known != now:
            async with self._room_keys(room_id):
                keys.renew_room_key(self.client, room_id)
        keys.ask_devices(self.client, now - {self.user_id})
        room._liaison_members = now

    async def set_display_name(self, name: str) -> None:
        resp = await self.client.set_displayname(name)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("display name", resp)

    async def react(self, room_id: str, event_id: str, key: str, txn_id: str) -> str:
        """An annotation (reactions are not encrypted in Matrix: the key says only a status)."""
        await self._ensure_room(room_id)
        async with self._room_keys(room_id):   # nio shares the room's key before a reaction too
            resp = await self.client.room_send(room_id, "m.reaction", {"m.relates_to": {
                "rel_type": "m.annotation", "event_id": event_id, "key": key}}, tx_id=txn_id,
                ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise MatrixError("reaction", resp)
        return resp.event_id

    async def upload_encrypted(self, data: bytes) -> dict:
        """Upload a file encrypted; returns the `file` object of the event (the key travels only in it).

        As Element does: no file name (it would sit in the upload URL, the homeserver's log and its media
        table, in clear) and no real type; name and type travel inside the encrypted event only.
        """
        resp, keys = await self.client.upload(io.BytesIO(data), content_type="application/octet-stream",
                                              encrypt=True, filesize=len(data))
        if not isinstance(resp, UploadResponse):
            raise MatrixError("upload", resp)
        return {**keys, "url": resp.content_uri}

    async def download(self, file: dict, max_bytes: int) -> bytes:
        """A room file's bytes, decrypted with the key carried by its (encrypted) event."""
        from nio import MemoryDownloadResponse
        from nio.crypto.attachments import decrypt_attachment

        resp = await self.client.download(mxc=file["url"])
        if not isinstance(resp, MemoryDownloadResponse):
            raise MatrixError("download", resp)
        if len(resp.body) > max_bytes:
            raise FileTooBig(len(resp.body))
        if "key" not in file:
            return resp.body
        return decrypt_attachment(resp.body, file["key"]["k"], file["hashes"]["sha256"], file["iv"])

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        resp = await self.client.room_redact(room_id, event_id, reason=reason, tx_id=txn_id)
        if isinstance(resp, ErrorResponse):
            raise MatrixError("redact", resp)

    async def close(self) -> None:
        await self.client.close()
