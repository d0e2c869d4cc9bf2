"""Measuring tools of the latency benchmark: a scripted clinician, the floor, percentiles, RSS.

A `Clinician` is an E2EE matrix-nio client with its own store, syncing in a background
task. Waiting is event-driven: the sync callbacks resolve asyncio futures keyed by what
is awaited (an event id, or the event a reply answers), stamped with `time.perf_counter()`
at the moment the sync hands over the decrypted event. A delivery that comes before
anyone waits for it is kept, so a fast reply is never lost to a race.

    a, b = Clinician("a"), Clinician("b")
    await a.login(url, "@a:hs", "pw", store_a); await b.login(url, "@b:hs", "pw", store_b)
    room = await a.create_encrypted_room(invite=[b.user_id, bot_id])
    await b.join(room); await a.wait_joined(room, [b.user_id, bot_id])
    await a.warm_up(room, "!aide", bot_id)
    seconds = await a.round_trip(room, "!aide", bot_id)
    await floor_warm_up(a, b, room); seconds = await floor_sample(a, b, room)
"""
from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from pathlib import Path

import aiohttp
import psutil
from nio import (AsyncClient, AsyncClientConfig, JoinError, LoginResponse,
                 MatrixRoom, RoomCreateResponse, RoomMessage, RoomSendResponse,
                 RoomVisibility)

MEGOLM = "m.megolm.v1.aes-sha2"
_counter = itertools.count(1)


def percentiles(samples: list[float]) -> dict:
    """p50, p95 and mean in milliseconds of `samples` given in seconds, and their count."""
    if not samples:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan"), "n": 0}
    ms = sorted(s * 1000 for s in samples)

    def rank(q: float) -> float:  # linear interpolation between closest ranks
        pos = q * (len(ms) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ms) - 1)
        return ms[lo] + (ms[hi] - ms[lo]) * (pos - lo)

    return {"p50": rank(0.50), "p95": rank(0.95), "mean": statistics.fmean(ms), "n": len(ms)}


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and all its descendants, in MiB."""
    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / (1024 * 1024)


class _Mailbox:
    """Futures by key; a delivery may come before or after the wait for it."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future] = {}

    def _future(self, key: str) -> asyncio.Future:
        if key not in self._futures:
            self._futures[key] = asyncio.get_running_loop().create_future()
        return self._futures[key]

    def deliver(self, key: str, value) -> None:
        fut = self._future(key)
        if not fut.done():
            fut.set_result(value)

    async def first(self, keys: list[str], timeout: float) -> bool:
        """Whether any of `keys` is (or gets, within `timeout`) delivered."""
        done, _ = await asyncio.wait([self._future(k) for k in keys], timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        return bool(done)

    async def wait(self, key: str, timeout: float):
        try:
            return await asyncio.wait_for(asyncio.shield(self._future(key)), timeout)
        finally:
            if self._futures.get(key) is not None and self._futures[key].done():
                del self._futures[key]


class Clinician:
    """A person's E2EE client, scripted: sends, and waits for events as its sync delivers them."""

    def __init__(self, name: str = "clinician") -> None:
        self.name = name
        self.client: AsyncClient | None = None
        self._events = _Mailbox()    # event id -> arrival time
        self._replies = _Mailbox()   # "<replied-to event id>|<sender>" -> arrival time
        self._sync_task: asyncio.Task | None = None

    @property
    def user_id(self) -> str:
        return self.client.user_id

    async def login(self, url: str, user_id: str, password: str, store: str | Path) -> None:
        Path(store).mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(url, user_id, store_path=str(store),
                                  config=AsyncClientConfig(encryption_enabled=True,
                                                           store_sync_tokens=False))
        resp = await self.client.login(password, device_name=f"bench-{self.name}")
        if not isinstance(resp, LoginResponse):
            raise RuntimeError(f"{self.name}: login failed: {resp}")
        await self.client.sync(timeout=0, full_state=True)  # history is not measured
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self.client.add_event_callback(self._on_message, RoomMessage)
        self._sync_task = asyncio.create_task(self.client.sync_forever(timeout=30_000),
                                              name=f"sync-{self.name}")

    async def close(self) -> None:
        if self._sync_task:
            self._sync_task.cancel()
            try:
                await self._sync_task
            except (asyncio.CancelledError, Exception):
                pass
        if self.client:
            await self.client.close()

    # -- sync callbacks ---------------------------------------------------

    async def _on_message(self, room: MatrixRoom, event: RoomMessage) -> None:
        now = time.perf_counter()
        self._events.deliver(event.event_id, now)
        relates = event.source.get("content", {}).get("m.relates_to") or {}
        replied = (relates.get("m.in_reply_to") or {}).get("event_id")
        if replied:
            self._replies.deliver(f"{replied}|{event.sender}", now)

    async def _until(self, condition, timeout: float, what: str) -> None:
        """Wait, sync after sync, until `condition()` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: {what} not seen within {timeout} s")
            try:
                await asyncio.wait_for(self.client.synced.wait(), left)
            except asyncio.TimeoutError:
                pass

    # -- rooms ------------------------------------------------------------

    async def create_encrypted_room(self, invite: list[str] = (), name: str | None = None,
                                    timeout: float = 30.0) -> str:
        resp = await self.client.room_create(
            visibility=RoomVisibility.private, name=name or f"bench {next(_counter)}",
            invite=list(invite),
            initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}},
                {"type": "m.room.guest_access", "state_key": "",
                 "content": {"guest_access": "forbidden"}},
            ])
        if not isinstance(resp, RoomCreateResponse):
            raise RuntimeError(f"{self.name}: room creation failed: {resp}")
        room_id = resp.room_id
        await self._until(lambda: room_id in self.client.rooms
                          and self.client.rooms[room_id].encrypted, timeout, "new room")
        return room_id

    async def join(self, room_id: str, timeout: float = 30.0) -> None:
        await self._until(lambda: room_id in self.client.invited_rooms
                          or room_id in self.client.rooms, timeout, f"invite to {room_id}")
        resp = await self.client.join(room_id)
        if isinstance(resp, JoinError):
            raise RuntimeError(f"{self.name}: join failed: {resp}")
        await self._until(lambda: room_id in self.client.rooms, timeout, f"join of {room_id}")

    async def wait_joined(self, room_id: str, users: list[str], timeout: float = 60.0) -> None:
        def joined() -> bool:
            room = self.client.rooms.get(room_id)
            return room is not None and all(
                u in room.users and u not in room.invited_users for u in users)
        await self._until(joined, timeout, f"{users} joined")

    # -- sending and measuring --------------------------------------------

    async def send(self, room_id: str, text: str) -> str:
        resp = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise RuntimeError(f"{self.name}: send failed: {resp}")
        return resp.event_id

    async def round_trip(self, room_id: str, text: str, from_user: str,
                         timeout: float = 30.0) -> float:
        """Seconds from our send to the sync delivering `from_user`'s reply to it."""
        start = time.perf_counter()
        event_id = await self.send(room_id, text)
        arrived = await self._replies.wait(f"{event_id}|{from_user}", timeout)
        return arrived - start

    async def wait_event(self, event_id: str, timeout: float = 30.0) -> float:
        """perf_counter() stamp at which our sync delivered `event_id`, decrypted."""
        return await self._events.wait(event_id, timeout)

    async def warm_up(self, room_id: str, text: str, from_user: str, timeout: float = 60.0,
                      every: float = 3.0) -> int:
        """Resend `text` until `from_user` replies to one; the number of sends it took.

        A bot cannot decrypt the first messages sent before it got the room key (and we
        may send before we know its device), so the first sends can go unanswered.
        """
        deadline = time.monotonic() + timeout
        keys: list[str] = []
        while time.monotonic() < deadline:
            keys.append(f"{await self.send(room_id, text)}|{from_user}")
            if await self._replies.first(keys, every):
                return len(keys)
            self.client.invalidate_outbound_session(room_id)  # reshare the key at next send
        raise TimeoutError(f"{self.name}: no reply from {from_user} within {timeout} s")


async def wait_device_keys(url: str, user_id: str, access_token: str,
                           timeout: float = 60.0) -> None:
    """Wait until `user_id` has uploaded device keys: a bot that got that far is syncing.

    Start-up readiness only (nothing is measured), so a plain poll of /keys/query.
    """
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {access_token}"}) as http:
        while time.monotonic() < deadline:
            async with http.post(url + "/_matrix/client/v3/keys/query",
                                 json={"device_keys": {user_id: []}}) as resp:
                if resp.status == 200 and (await resp.json()).get("device_keys", {}).get(user_id):
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{user_id} uploaded no device keys within {timeout} s")


# -- the floor: one client to another, no bot ------------------------------

async def floor_sample(a: Clinician, b: Clinician, room_id: str, text: str = "floor",
                       timeout: float = 30.0) -> float:
    """Seconds from A's send to B's sync delivering the decrypted event."""
    start = time.perf_counter()
    event_id = await a.send(room_id, text)
    return await b.wait_event(event_id, timeout) - start


async def floor_warm_up(a: Clinician, b: Clinician, room_id: str, timeout: float = 60.0) -> int:
    """Send A→B until B decrypts one (B may get the room key only after the first sends)."""
    deadline = time.monotonic() + timeout
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        try:
            await floor_sample(a, b, room_id, "warm-up", timeout=3.0)
            return tries
        except asyncio.TimeoutError:
            a.client.invalidate_outbound_session(room_id)
    raise TimeoutError(f"{b.name} decrypted none of {a.name}'s messages within {timeout} s")
