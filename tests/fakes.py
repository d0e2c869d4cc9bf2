"""A fast in-memory stand-in for `liaison.matrix.Matrix`, the real stores on SQLite around it, and a helper that
runs one command line through the real registry and the real `Bot._run` (audience, encrypted room, arguments).

No homeserver: rooms, members, state and messages live in dicts a test can read. The fake behaves like Synapse
where the bot relies on it: a transaction id never posts twice, an unknown account has no display name, a room
the bot is not in is refused (M_FORBIDDEN), a kicked member is gone. Room and event ids are deterministic
(`!r1:hs`, `$e1`…), in the order things are made.
"""
from __future__ import annotations

import atexit
import hashlib
import itertools
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import Bot, BotSettings
from bot.parsing import Registry
from bot.registry import Reply
from bot.services import PathwaySettings, Services
from bot.store import BotStore
from liaison.bootstrap import shared_on
from liaison.clock import Clock
from liaison.config import RosterEntry
from liaison.db import open_database
from liaison.matrix import FileTooBig, MatrixError, PushedMessage, Session, SyncBatch, TextMessage
from liaison.matrix.content import file_content
from liaison.matrix.events import pushed_message
from liaison.clock import system_now_ms as now_ms
from liaison.trusted import TrustedDomains
from policies.sharing import Knobs

SERVER = "hs"
BOT = "@liaison:hs"
BRIDGE = "@mss_relais:hs"
COORD, GP, NURSE, SOCIAL = "@coord:hs", "@medecin:hs", "@infirmiere:hs", "@social:hs"
OUTSIDER = "@dehors:hs"   # an account of the homeserver, not on the roster

ROSTER: list[dict[str, Any]] = [
    {"user_id": COORD, "name": "Claire Morel", "profession": "coordinatrice", "coordinator": True},
    {"user_id": GP, "name": "Dr Paul Martin", "profession": "médecin"},
    {"user_id": NURSE, "name": "Sophie Bernard", "profession": "infirmière"},
    {"user_id": SOCIAL, "name": "Nadia Haddad", "profession": "assistante sociale"},
]
ACCOUNTS = {OUTSIDER: "Denis Hors", "@kine:hs": "Karim Kiné", "@x:hs": "Xavier Social"}
TRUSTED = ("chu.mssante.fr",)


class _Refusal:
    """What MatrixError reads of a homeserver's refusal (nio's ErrorResponse has the same two fields)."""

    def __init__(self, errcode: str, message: str = "") -> None:
        self.status_code, self.message = errcode, message


def refused(what: str, errcode: str = "M_FORBIDDEN") -> MatrixError:
    return MatrixError(what, _Refusal(errcode, "refused by the fake homeserver"))


@dataclass
class Sent:
    room_id: str
    content: dict
    txn_id: str
    event_id: str

    @property
    def body(self) -> str:
        return self.content.get("body", "")


@dataclass
class Room:
    room_id: str
    name: str
    topic: str
    encrypted: bool
    space: bool = False
    creator: str = ""
    state: dict[tuple[str, str], dict] = field(default_factory=dict)
    membership: dict[str, str] = field(default_factory=dict)   # user id -> join | invite | leave
    timeline: list[dict] = field(default_factory=list)

    def with_state(self, membership: str) -> set[str]:
        return {u for u, m in self.membership.items() if m == membership}


class FakeMatrix:
    """The calls of `liaison.matrix.Matrix`, same signatures, over dicts; what the bot did is in the lists below."""

    def __init__(self, user_id: str = BOT, server_name: str = SERVER, accounts: dict[str, str | None] | None = None):
        self._user_id, self.server_name = user_id, server_name
        self.accounts: dict[str, str | None] = {user_id: "Liaison", **(accounts or {})}   # None: no display name
        self.devices: dict[str, set[str]] = {}
        self.rooms: dict[str, Room] = {}
        self.sent: list[Sent] = []                             # messages (and files), in order
        self.created: list[dict] = []                          # create_room's arguments, with "room_id"
        self.invited: list[tuple[str, str]] = []               # (room, user), invite() calls and create_room's
        self.kicked: list[tuple[str, str, str]] = []           # (room, user, reason)
        self.state_set: list[tuple[str, str, str, dict]] = []  # (room, type, state key, content), set_state calls
        self.files: list[tuple[str, str, str, bytes]] = []     # (room, file name, mime, bytes), send_file calls
        self.redacted: list[tuple[str, str, str]] = []         # (room, event, reason)
        self.reactions: list[tuple[str, str, str]] = []        # (room, event, key)
        self.left: list[str] = []
        self.forgotten: list[str] = []
        self.uploads: dict[str, bytes] = {}
        self.closed = False
        self._rooms = itertools.count(1)
        self._events = itertools.count(1)
        self._uploads = itertools.count(1)
        self._txns: dict[str, str] = {}
        self._txn_at: dict[str, int] = {}
        self._txn_clock: Clock | None = None   # forget_transactions_after
        self._txn_ttl_ms = 0
        self._failing: dict[str, list[str]] = {}
        self._pending: list[tuple[str, dict]] = []

    # -- what a test sets up or reads -----------------------------------------------------------------------

    def add_account(self, user_id: str, name: str | None = None, devices: tuple[str, ...] = ("DEV1",)) -> None:
        self.accounts[user_id] = name
        self.devices[user_id] = set(devices)

    def add_room(self, room_id: str | None = None, *, members: tuple[str, ...] = (), encrypted: bool = True) -> str:
        """A room the bot was invited into and joined (a coordinator's desk, a direct chat), with `members` in it."""
        room_id = room_id or self._room_id()
        room = Room(room_id, "", "", encrypted)
        room.membership = {self.user_id: "join", **{u: "join" for u in members}}
        self.rooms[room_id] = room
        return room_id

    def fail_next(self, method: str, errcode: str = "M_UNKNOWN") -> None:
        """The next call of `method` is refused by the homeserver with `errcode`."""
        self._failing.setdefault(method, []).append(errcode)

    def forget_transactions_after(self, clock: Clock, ttl_ms: int = 30 * 60_000) -> None:
        """Like Synapse, deduplicate a transaction id only `ttl_ms` of `clock`'s time after its first use (by
        default the fake remembers it for ever)."""
        self._txn_clock, self._txn_ttl_ms = clock, ttl_ms

    def accept(self, room_id: str, user_id: str) -> None:
        """`user_id` accepts the invitation (or joins)."""
        self._room(room_id, "join").membership[user_id] = "join"

    def post(self, room_id: str, sender: str, body: str) -> str:
        """A member writes in the room; its event id (also used for the commands `ask` runs)."""
        event_id = self.new_event_id()
        if room_id in self.rooms:
            self._timeline(room_id, sender, "m.room.message", {"msgtype": "m.text", "body": body}, event_id)
        return event_id

    def new_event_id(self) -> str:
        return f"$e{next(self._events)}"

    def room(self, room_id: str) -> Room:
        return self.rooms[room_id]

    def bodies(self, room_id: str | None = None) -> list[str]:
        return [s.body for s in self.sent if room_id is None or s.room_id == room_id]

    def state_now(self, room_id: str, event_type: str, state_key: str = "") -> dict | None:
        return self.rooms[room_id].state.get((event_type, state_key))

    # -- the client's calls --------------------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def device_id(self) -> str:
        return "FAKEBOT"

    async def login(self, password: str, saved: Session | None) -> Session:
        self._maybe_fail("login")
        if saved and saved.user_id == self._user_id:
            return saved
        return Session(self._user_id, self.device_id, "fake-token")

    async def sync(self, since: str | None, timeout_ms: int) -> SyncBatch:
        self._maybe_fail("sync")
        return SyncBatch(next_batch=f"s{next(self._events)}", idle=True)

    def pending(self) -> dict[str, tuple[str, dict]]:
        return {}

    def restore_pending(self, events: list[tuple[str, dict]]) -> None:
        self._pending = list(events)

    async def join(self, room_id: str) -> None:
        self._maybe_fail("join")
        room = self.rooms.get(room_id)
        if room is None or room.membership.get(self.user_id) not in ("invite", "join"):
            raise refused("join")
        room.membership[self.user_id] = "join"

    async def leave(self, room_id: str) -> None:
        self._maybe_fail("leave")
        self.left.append(room_id)
        if room_id in self.rooms:
            self.rooms[room_id].membership[self.user_id] = "leave"

    async def send(self, room_id: str, content: dict, txn_id: str) -> str:
        self._maybe_fail("send")
        return self._send(room_id, content, txn_id)

    async def create_room(self, *, name: str, topic: str, initial_state: list[dict],
                          power_levels: dict | None, invite: Sequence[str] = (), space: bool = False) -> str:
        self._maybe_fail("create_room")
        room_id = self._room_id()
        encrypted = any(ev.get("type") == "m.room.encryption" for ev in initial_state)
        room = Room(room_id, name, topic, encrypted, space, self.user_id)
        room.state[("m.room.create", "")] = {"creator": self.user_id, "room_version": "12",
                                             **({"type": "m.space"} if space else {})}
        room.state[("m.room.join_rules", "")] = {"join_rule": "invite"}   # the private preset
        room.state[("m.room.name", "")] = {"name": name}
        room.state[("m.room.topic", "")] = {"topic": topic}
        if power_levels:
            room.state[("m.room.power_levels", "")] = power_levels
        for ev in initial_state:
            room.state[(ev["type"], ev.get("state_key", ""))] = ev["content"]
        room.membership[self.user_id] = "join"
        for user_id in invite:
            room.membership[user_id] = "invite"
            self.invited.append((room_id, user_id))
        self.rooms[room_id] = room
        self.created.append({"room_id": room_id, "name": name, "topic": topic, "initial_state": initial_state,
                             "power_levels": power_levels, "invite": list(invite), "space": space})
        return room_id

    async def invite(self, room_id: str, user_id: str) -> None:
        self._maybe_fail("invite")
        room = self._room(room_id, "invite")
        if room.membership.get(user_id) == "join":
            raise refused("invite")   # Synapse: « … is already in the room »
        room.membership[user_id] = "invite"
        self.invited.append((room_id, user_id))

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        self._maybe_fail("kick")
        room = self._room(room_id, "kick")
        if room.membership.get(user_id) not in ("join", "invite"):
            raise refused("kick")
        room.membership[user_id] = "leave"
        self.kicked.append((room_id, user_id, reason))

    async def member_devices(self, room_id: str, users: set[str]) -> set[tuple[str, str]]:
        self._maybe_fail("member_devices")
        return {(u, d) for u in users for d in self.devices.get(u, ())}

    async def members(self, room_id: str) -> set[str]:
        self._maybe_fail("members")
        room = self._room(room_id, "room state")
        return room.with_state("join") | room.with_state("invite")

    async def joined(self, room_id: str) -> set[str]:
        self._maybe_fail("joined")
        return self._room(room_id, "joined members").with_state("join")

    async def send_to_current_devices(self, room_id: str, content: dict, txn_id: str) -> tuple[str, frozenset]:
        self._maybe_fail("send_to_current_devices")
        room = self._room(room_id, "send")
        readers = frozenset((u, d) for u in room.with_state("join") for d in self.devices.get(u, ()))
        return self._send(room_id, content, txn_id), readers if room.encrypted else frozenset()

    async def event_origin(self, room_id: str, event_id: str) -> tuple[str, int] | None:
        self._maybe_fail("event_origin")
        room = self.rooms.get(room_id)
        found = next((e for e in room.timeline if e["event_id"] == event_id), None) if room else None
        return (found["sender"], found["origin_server_ts"]) if found else None

    def rooms_with(self, user_id: str) -> list[str]:
        return [r.room_id for r in self.rooms.values() if r.membership.get(user_id) in ("join", "invite")]

    def synced_members(self, room_id: str) -> set[str] | None:
        room = self.rooms.get(room_id)
        return {u for u, m in room.membership.items() if m in ("join", "invite")} if room is not None else None

    async def set_state(self, room_id: str, event_type: str, content: dict, state_key: str = "") -> str:
        self._maybe_fail("set_state")
        room = self._room(room_id, f"state {event_type}")
        room.state[(event_type, state_key)] = content
        self.state_set.append((room_id, event_type, state_key, content))
        event_id = self.new_event_id()
        self._timeline(room_id, self.user_id, event_type, content, event_id, state_key=state_key)
        return event_id

    async def state(self, room_id: str) -> list[dict]:
        self._maybe_fail("state")
        room = self._room(room_id, "room state")
        events = [{"type": t, "state_key": k, "content": c} for (t, k), c in room.state.items()]
        return events + [{"type": "m.room.member", "state_key": u, "content": {"membership": m}}
                         for u, m in room.membership.items()]

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> dict | None:
        self._maybe_fail("state_event")
        room = self._room(room_id, f"state {event_type}")
        if event_type == "m.room.member":
            membership = room.membership.get(state_key)
            return {"membership": membership} if membership else None
        found = room.state.get((event_type, state_key))
        return dict(found) if found is not None else None

    async def display_name(self, user_id: str) -> str | None:
        self._maybe_fail("display_name")
        if user_id not in self.accounts:
            return None
        return self.accounts[user_id] or user_id

    async def history(self, room_id: str, max_events: int = 100_000) -> list[dict]:
        self._maybe_fail("history")
        room = self._room(room_id, "messages")
        messages = [e for e in room.timeline if e["type"] == "m.room.message"][:max_events]
        return [{"sender": e["sender"], "ts": e["origin_server_ts"], "body": e["content"].get("body", "")}
                for e in messages]

    async def recent_events(self, room_id: str, since_ms: int, limit: int) -> list[dict]:
        self._maybe_fail("recent_events")
        room = self._room(room_id, "messages")
        return [dict(e) for e in room.timeline if e["origin_server_ts"] >= since_ms][-limit:]

    async def joined_rooms(self) -> list[str]:
        self._maybe_fail("joined_rooms")
        return [r.room_id for r in self.rooms.values() if r.membership.get(self.user_id) == "join"]

    async def send_file(self, room_id: str, data: bytes, filename: str, mime: str, txn_id: str) -> str:
        self._maybe_fail("send_file")
        event_id = self._send(room_id, file_content(filename, mime, len(data), await self.upload_encrypted(data)),
                              txn_id)
        self.files.append((room_id, filename, mime, data))
        return event_id

    async def forget_room(self, room_id: str) -> None:
        self._maybe_fail("forget_room")
        self.forgotten.append(room_id)
        if room_id in self.rooms:
            self.rooms[room_id].membership[self.user_id] = "leave"

    def read_pushed(self, event: dict) -> PushedMessage | None:
        if event.get("type") != "m.room.message" or "state_key" in event:
            return None
        content = event.get("content") or {}
        return pushed_message(event, content) if isinstance(content, dict) else None

    async def refresh_members(self, room_id: str) -> None:
        self._maybe_fail("refresh_members")
        self._room(room_id, "joined members")

    async def set_display_name(self, name: str) -> None:
        self._maybe_fail("set_display_name")
        self.accounts[self.user_id] = name

    async def react(self, room_id: str, event_id: str, key: str, txn_id: str) -> str:
        self._maybe_fail("react")
        self._room(room_id, "reaction")
        self.reactions.append((room_id, event_id, key))
        return self._txns.setdefault(txn_id, self.new_event_id())

    async def upload_encrypted(self, data: bytes) -> dict:
        self._maybe_fail("upload_encrypted")
        url = f"mxc://{self.server_name}/u{next(self._uploads)}"
        self.uploads[url] = data
        return {"url": url, "key": {"k": "fake-key", "alg": "A256CTR", "ext": True, "kty": "oct"}, "iv": "fake-iv",
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()}, "v": "v2"}

    async def download(self, file: dict, max_bytes: int) -> bytes:
        self._maybe_fail("download")
        if file.get("url") not in self.uploads:
            raise refused("download", "M_NOT_FOUND")
        data = self.uploads[file["url"]]
        if len(data) > max_bytes:
            raise FileTooBig(len(data))
        return data

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        self._maybe_fail("redact")
        self._room(room_id, "redact")
        self.redacted.append((room_id, event_id, reason))

    async def close(self) -> None:
        self.closed = True

    # -- inside ----------------------------------------------------------------------------------------------

    def _room_id(self) -> str:
        return f"!r{next(self._rooms)}:{self.server_name}"

    def _room(self, room_id: str, what: str, errcode: str = "M_FORBIDDEN") -> Room:
        """The room, if the bot is in it (or invited); the homeserver refuses anything else."""
        room = self.rooms.get(room_id)
        if room is None or room.membership.get(self.user_id) not in ("join", "invite"):
            raise refused(what, errcode)
        return room

    def _maybe_fail(self, method: str) -> None:
        if self._failing.get(method):
            raise refused(method, self._failing[method].pop(0))

    def _send(self, room_id: str, content: dict, txn_id: str) -> str:
        self._room(room_id, "send")
        now = self._txn_clock.now_ms() if self._txn_clock else 0
        if txn_id in self._txns and (self._txn_clock is None or now - self._txn_at[txn_id] < self._txn_ttl_ms):
            return self._txns[txn_id]   # the homeserver deduplicates a transaction id (for a while)
        event_id = self._txns[txn_id] = self.new_event_id()
        self._txn_at[txn_id] = now
        self.sent.append(Sent(room_id, content, txn_id, event_id))
        # Given back to the device that sent it (client-server spec, `unsigned.transaction_id`).
        self._timeline(room_id, self.user_id, "m.room.message", content, event_id,
                       unsigned={"transaction_id": txn_id})
        return event_id

    def _timeline(self, room_id: str, sender: str, event_type: str, content: dict, event_id: str,
                  **extra) -> None:
        self.rooms[room_id].timeline.append({"event_id": event_id, "room_id": room_id, "sender": sender,
                                             "type": event_type, "content": content,
                                             "origin_server_ts": now_ms(), **extra})


# -- the real stores on SQLite, around the fake -----------------------------------------------------------------

_template: Path | None = None


async def _database(tmp_path: Path):
    """A migrated SQLite database in tmp_path: migrated once per test session, then copied (fast)."""
    global _template
    if _template is None:
        folder = tempfile.mkdtemp(prefix="liaison-template-")
        atexit.register(shutil.rmtree, folder, True)
        made = Path(folder) / "template.db"
        engine = await open_database(f"sqlite+aiosqlite:///{made}")
        await engine.dispose()   # the last connection closed: the WAL is checkpointed into the file
        _template = made
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "liaison.db"
    shutil.copyfile(_template, target)
    return await open_database(f"sqlite+aiosqlite:///{target}")


async def make_services(tmp_path: Path, *, bridge: bool = True, roster: list[dict] | None = None,
                        accounts: dict[str, str | None] | None = None, knobs: Knobs | None = None,
                        trusted: tuple[str, ...] = TRUSTED, ins_test_mode: bool = True,
                        clock: Clock | None = None) -> Services:
    """`Services` as bot/__main__.py builds them (the same bootstrap, liaison/bootstrap.py), on SQLite in tmp_path,
    with a FakeMatrix (`services.matrix`) and, if given, a movable clock (liaison.clock.MovableClock).

    Every roster member (default: ROSTER) and every account of `accounts` (default: ACCOUNTS) exists on the fake
    homeserver; with `bridge`, the MSSanté bridge's stores are there and `trusted` is its trusted-domain list.
    Close with `close_services`."""
    roster = ROSTER if roster is None else roster
    knobs = knobs or Knobs()
    engine = await _database(tmp_path)
    matrix = FakeMatrix(BOT, SERVER)
    for user_id, name in {**{e["user_id"]: e["name"] for e in roster},
                          **(ACCOUNTS if accounts is None else accounts)}.items():
        matrix.add_account(user_id, name)
    if bridge:
        matrix.add_account(BRIDGE, "Pont MSSanté")
    shared = shared_on(engine, knobs, bridge=bridge, trusted=TrustedDomains(frozenset(trusted)), clock=clock)
    await shared.roster.load([RosterEntry(**e) for e in roster])
    settings = PathwaySettings(server_name=SERVER, bot_user_id=BOT, naming=knobs.room_naming,
                               ins_test_mode=ins_test_mode, retention_days=knobs.retention_days_after_closure,
                               bridge_user_id=BRIDGE if bridge else None)
    return Services.of(shared, matrix, settings)


async def close_services(services: Services) -> None:
    await services.pathways.engine.dispose()


async def ask(services: Services, registry: Registry, sender: str, room_id: str, body: str, *,
              encrypted: bool = True, staff: tuple[str, ...] = ()) -> Reply:
    """The bot's answer to `body` typed by `sender` in `room_id`, through the real `Bot._reply_for` (parse, audience,
    encrypted-room check, argument problems, `requires`, then the handler). `staff`: BotSettings.staff."""
    assert isinstance(services.matrix, FakeMatrix), "ask() speaks through the fake homeserver"
    bot = Bot(services.matrix, BotStore(services.pathways.engine), registry,
              BotSettings(password="", staff=frozenset(staff)), services)
    event_id = services.matrix.post(room_id, sender, body)
    return await bot._reply_for(TextMessage(room_id, event_id, sender, body, encrypted), registry.parse(body))
