"""What the bot keeps in the database: its Matrix session and the commands it has seen."""
from __future__ import annotations

import json

from sqlalchemy import text

from liaison.stores.accounts import Accounts
from liaison.matrix import TextMessage
from liaison.stores.retention import Retention


class BotStore(Accounts):
    """The bot's session (see Accounts) and the commands it has seen."""

    RETENTION = Accounts.RETENTION + Retention(
        kept={"bot_command": "each command seen, for dedup: its text is erased once answered",
              "bot_undecrypted": "ciphertext waiting for its room key, dropped when read or after a day"},
        no_patient_data={"archive_room": "where each coordinator receives archives: a user and a room id"})

    async def record_commands(self, messages: list[TextMessage]) -> list[TextMessage]:
        """Store the commands of one sync; returns those not answered yet (new or left over by a crash)."""
        if not messages:
            return []
        async with self.engine.begin() as conn:
            for m in messages:
                await conn.execute(text(
                    "INSERT INTO bot_command (event_id, room_id, sender, body, thread_root, received_at, encrypted, "
                    "reply_to) VALUES (:e, :r, :s, :b, :th, :t, :enc, :to) ON CONFLICT (event_id) DO NOTHING"),
                    {"e": m.event_id, "r": m.room_id, "s": m.sender, "b": m.body, "th": m.thread_root,
                     "t": self.clock.now_ms(), "enc": int(m.encrypted), "to": m.reply_to})
            ids = [m.event_id for m in messages]
            answered = {r.event_id for r in (await conn.execute(
                text("SELECT event_id FROM bot_command WHERE answered_at IS NOT NULL AND event_id IN ("
                     + ",".join(f":e{i}" for i in range(len(ids))) + ")"),
                {f"e{i}": e for i, e in enumerate(ids)}))}
        return [m for m in messages if m.event_id not in answered]

    async def unanswered(self) -> list[TextMessage]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT event_id, room_id, sender, body, thread_root, encrypted, reply_to FROM bot_command "
                "WHERE answered_at IS NULL ORDER BY received_at"))).all()
        return [TextMessage(r.room_id, r.event_id, r.sender, r.body or "", encrypted=bool(r.encrypted),
                            thread_root=r.thread_root, reply_to=r.reply_to) for r in rows]

    # -- archives ---------------------------------------------------------

    async def archive_room(self, user_id: str) -> str | None:
        """The direct room where a coordinator receives the archives of the pathways they closed."""
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT room_id FROM archive_room WHERE user_id = :u"),
                                       {"u": user_id})).scalar()

    async def set_archive_room(self, user_id: str, room_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("INSERT INTO archive_room (user_id, room_id) VALUES (:u, :r) "
                                    "ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id"),
                               {"u": user_id, "r": room_id})   # a new room replaces one no longer private

    # -- events waiting for their room key --------------------------------

    async def keep_undecrypted(self, pending: dict[str, tuple[str, dict]], max_age_ms: int = 86_400_000) -> None:
        """The events still waiting for their key now (event id -> (room, event as synced)); the rest forgotten."""
        async with self.engine.begin() as conn:
            known = {r.event_id for r in await conn.execute(text("SELECT event_id FROM bot_undecrypted"))}
            for event_id in known - set(pending):
                await conn.execute(text("DELETE FROM bot_undecrypted WHERE event_id = :e"), {"e": event_id})
            for event_id in set(pending) - known:
                room_id, source = pending[event_id]
                await conn.execute(text("INSERT INTO bot_undecrypted (event_id, room_id, event_json, received_at) "
                                        "VALUES (:e, :r, :j, :t)"),
                                   {"e": event_id, "r": room_id, "j": json.dumps(source), "t": self.clock.now_ms()})
            await conn.execute(text("DELETE FROM bot_undecrypted WHERE received_at < :t"),
                               {"t": self.clock.now_ms() - max_age_ms})

    async def undecrypted(self) -> list[tuple[str, dict]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT room_id, event_json FROM bot_undecrypted ORDER BY received_at"))
            return [(r.room_id, json.loads(r.event_json)) for r in rows]

    async def mark_answered(self, event_id: str, reply_event_id: str | None) -> None:
        """The body is dropped once answered: the database keeps no more than it needs."""
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "UPDATE bot_command SET answered_at = :t, reply_event_id = :r, body = NULL WHERE event_id = :e"),
                {"t": self.clock.now_ms(), "r": reply_event_id, "e": event_id})
