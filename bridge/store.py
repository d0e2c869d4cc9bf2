"""The bridge's own tables: appservice transactions, puppets, mails seen, the outbox and receipts.

Store first, acknowledge after: a transaction is written before the homeserver gets its 200,
a mail before it leaves the inbox, a reply before it is sent; every table dedupes on its ids.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import text

from bridge.doorbell import Doorbell
from liaison.stores.accounts import Accounts
from liaison.db import bytes_param, bytes_value, fields
from liaison.clock import Clock
from liaison.stores.retention import Retention

DONE_MAIL_STATES = ("posted", "quarantined", "rejected", "receipt", "ignored")


@dataclass(frozen=True)
class Puppet:
    address: str
    user_id: str
    display_name: str


@dataclass(frozen=True)
class PendingEvent:
    """A pushed room event waiting to be relayed (or ignored)."""
    event: dict
    received_at: int     # ms
    attempts: int        # passes that could not finish it


@dataclass(frozen=True)
class MdnOwed:
    """A posted mail whose sender asked for a read receipt, not sent yet."""
    mail_id: str
    message_id: str
    to: str
    pathway_id: str
    event_id: str
    posted_at: int


@dataclass(frozen=True)
class Outgoing:
    id: str
    source_event_id: str
    pathway_id: str | None
    room_id: str
    message_id: str
    recipient: str
    raw: bytes
    state: str
    attempts: int
    give_up_at: int
    retry_notice: str | None
    sent_at: int | None = None
    corrects: str | None = None     # a correction or « retiré » notice: the source event of the mail it follows
    correction: str | None = None   # … which: "edit" or "retract"


async def _record_events(conn, events: list[dict], at: int) -> int:
    new = 0
    for ev in events:
        if not isinstance(ev, dict) or not isinstance(ev.get("event_id"), str):
            continue
        new += (await conn.execute(text(
            "INSERT INTO as_event (event_id, room_id, sender, event_json, state, received_at) "
            "VALUES (:e, :r, :s, :j, 'pending', :at) ON CONFLICT (event_id) DO NOTHING"),
            {"e": ev["event_id"], "r": str(ev.get("room_id", "")), "s": str(ev.get("sender", "")),
             "j": json.dumps(ev), "at": at})).rowcount
    return new


def _outgoing(r) -> Outgoing:
    return Outgoing(r.id, r.source_event_id, r.pathway_id, r.room_id, r.message_id, r.recipient,
                    bytes_value(r.raw), r.state, r.attempts, r.give_up_at, r.retry_notice, r.sent_at, r.corrects,
                    r.correction)


_OUT = ("id, source_event_id, pathway_id, room_id, message_id, recipient, raw, state, attempts, give_up_at, "
        "retry_notice, sent_at, corrects, correction")


class BridgeStore(Accounts):
    """The bridge's tables, and the sessions of its account and puppets (see Accounts).

    Its two queues ring their loop's doorbell when written: `new_events` (events to relay out, bridge/outbound.py)
    and `new_mail_out` (mails to send, bridge/outbox.py)."""

    # Nothing of a pathway to forget here: the archive runs in the bot, which asks the shared stores (liaison/).
    RETENTION = Accounts.RETENTION + Retention(
        kept={"as_event": "events pushed by the homeserver, for dedup: the event itself is emptied once relayed",
              "mail_in": "each mail seen, for dedup (ids, sender, state): no content",
              "mail_out": "each mail sent, for its receipts: its raw text is erased once sent or abandoned"},
        no_patient_data={"as_transaction": "appservice transaction ids",
                         "mail_receipt": "receipt kinds and states of a sent mail",
                         "mss_puppet": "the Matrix account of each external professional's address",
                         "mss_puppet_room": "which rooms a puppet joined: ids only"})

    def __init__(self, engine, clock: Clock | None = None) -> None:
        super().__init__(engine, clock)
        self.new_events, self.new_mail_out = Doorbell(), Doorbell()
        self._claims: dict[str, tuple[asyncio.Lock, list[int]]] = {}   # out id -> lock, its users (in flight only)

    @contextlib.asynccontextmanager
    async def claimed(self, out_id: str) -> AsyncIterator[None]:
        """One mail's send (bridge/outbox.py) and its edit or deletion (bridge/corrections.py), one after the other:
        an edit never lands while the old text is leaving, a deletion never says « rien n'est parti » of a mail
        that did. In memory: one bridge process sends."""
        lock, users = self._claims.setdefault(out_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                self._claims.pop(out_id, None)

    # -- appservice transactions --------------------------------------------

    async def record_transaction(self, txn_id: str, events: list[dict]) -> tuple[int, bool]:
        """All of a transaction's events in one database transaction: (events new to us, transaction id seen before).

        Deduplicated by event id, not by transaction id alone: the homeserver numbers its transactions
        from 1 again after a restart, so a known id may carry new events (they are kept), and the same
        events pushed twice are kept once.
        """
        async with self.engine.begin() as conn:
            known = not (await conn.execute(text("INSERT INTO as_transaction (txn_id, received_at) VALUES (:t, :at) "
                                                 "ON CONFLICT (txn_id) DO NOTHING"), {"t": txn_id, "at": self.clock.now_ms()})).rowcount
            new = await _record_events(conn, events, self.clock.now_ms())
        if new:
            self.new_events.ring()
        return new, known

    async def record_events(self, events: list[dict]) -> int:
        """Events read back from the rooms (bridge/catch_up.py), kept as if pushed: those seen before are not."""
        async with self.engine.begin() as conn:
            new = await _record_events(conn, events, self.clock.now_ms())
        if new:
            self.new_events.ring()
        return new

    async def pending(self, limit: int = 200) -> list[PendingEvent]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT event_json, received_at, attempts FROM as_event "
                                           "WHERE state = 'pending' ORDER BY received_at LIMIT :l"), {"l": limit})
            return [PendingEvent(json.loads(r.event_json), r.received_at, r.attempts) for r in rows]

    async def pending_events(self, limit: int = 200) -> list[dict]:
        return [p.event for p in await self.pending(limit)]

    async def finish_event(self, event_id: str, state: str) -> None:
        """done or ignored: the event's ciphertext is no longer needed."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE as_event SET state = :s, done_at = :t, event_json = '{}' "
                                    "WHERE event_id = :e"), {"s": state, "t": self.clock.now_ms(), "e": event_id})

    async def event_attempt(self, event_id: str) -> int:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE as_event SET attempts = attempts + 1 WHERE event_id = :e"), {"e": event_id})
            return (await conn.execute(text("SELECT attempts FROM as_event WHERE event_id = :e"),
                                       {"e": event_id})).scalar() or 0

    # -- puppets ------------------------------------------------------------

    async def puppet(self, address: str) -> Puppet | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT address, user_id, display_name FROM mss_puppet WHERE address = :a"),
                                      {"a": address.lower()})).first()
        return Puppet(*fields(row)) if row else None

    async def registered(self, user_id: str) -> bool:
        """An account this bridge registered: a puppet, or the bridge's own (its session is kept)."""
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT 1 FROM mss_puppet WHERE user_id = :u UNION ALL "
                                            "SELECT 1 FROM matrix_account WHERE user_id = :u"),
                                       {"u": user_id})).first() is not None

    async def add_puppet(self, p: Puppet) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("INSERT INTO mss_puppet (address, user_id, display_name, created_at) VALUES "
                                    "(:a, :u, :d, :t) ON CONFLICT (address) DO UPDATE SET display_name = :d"),
                               {"a": p.address.lower(), "u": p.user_id, "d": p.display_name, "t": self.clock.now_ms()})

    async def puppet_in_room(self, user_id: str, room_id: str) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT 1 FROM mss_puppet_room WHERE user_id = :u AND room_id = :r"),
                                       {"u": user_id, "r": room_id})).first() is not None

    async def add_puppet_room(self, user_id: str, room_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("INSERT INTO mss_puppet_room (user_id, room_id) VALUES (:u, :r) "
                                    "ON CONFLICT (user_id, room_id) DO NOTHING"), {"u": user_id, "r": room_id})

    async def puppet_rooms(self) -> set[str]:
        """Every room a puppet entered: where a mail's text may be, even before its thread is recorded."""
        async with self.engine.connect() as conn:
            return {r.room_id for r in await conn.execute(text("SELECT DISTINCT room_id FROM mss_puppet_room"))}

    async def remove_puppet_room(self, user_id: str, room_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM mss_puppet_room WHERE user_id = :u AND room_id = :r"),
                               {"u": user_id, "r": room_id})

    # -- mails seen ---------------------------------------------------------

    async def mail_state(self, mailbox: str, uidvalidity: int, uid: int) -> tuple[str, str] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT id, state FROM mail_in WHERE mailbox = :m AND uidvalidity = :v "
                                           "AND uid = :u"), {"m": mailbox, "v": uidvalidity, "u": uid})).first()
        return (row.id, row.state) if row else None

    async def begin_mail(self, mailbox: str, uidvalidity: int, uid: int) -> str:
        """The mail's row, made once per (mailbox, UIDVALIDITY, UID)."""
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO mail_in (id, mailbox, uidvalidity, uid, state, received_at) VALUES "
                "(:i, :m, :v, :u, 'received', :t) ON CONFLICT (mailbox, uidvalidity, uid) DO NOTHING"),
                {"i": uuid.uuid4().hex, "m": mailbox, "v": uidvalidity, "u": uid, "t": self.clock.now_ms()})
            return str((await conn.execute(text("SELECT id FROM mail_in WHERE mailbox = :m AND uidvalidity = :v "
                                                "AND uid = :u"), {"m": mailbox, "v": uidvalidity, "u": uid})).scalar_one())

    async def count_attempt(self, mail_id: str) -> int:
        """A pass over this mail begins: the passes that did not end so far, this one included (see 0012_poison)."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_in SET failures = failures + 1 WHERE id = :i"), {"i": mail_id})
            return (await conn.execute(text("SELECT failures FROM mail_in WHERE id = :i"), {"i": mail_id})).scalar() or 0

    async def uncount_attempt(self, mail_id: str) -> None:
        """The pass ended in « try again later », through no fault of the mail: it does not count against it."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_in SET failures = failures - 1 WHERE id = :i AND failures > 0"),
                               {"i": mail_id})

    async def duplicate_of(self, mail_id: str, message_id: str | None, content_hash: str,
                           sender: str = "") -> str | None:
        """Another mail of this sender already handled with this Message-ID (or, lacking one, this content).

        Per sender: anyone may write any Message-ID, and another sender's must not hide a mail."""
        marks = ",".join(f"'{s}'" for s in DONE_MAIL_STATES)
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_in SET message_id = :mid, content_hash = :h, sender = :f "
                                    "WHERE id = :i"),
                               {"mid": message_id, "h": content_hash, "f": sender.lower(), "i": mail_id})
            if message_id:
                query, args = "message_id = :k AND COALESCE(sender, '') = :f", {"k": message_id, "f": sender.lower()}
            else:
                query, args = "content_hash = :k", {"k": content_hash}
            return (await conn.execute(text(f"SELECT id FROM mail_in WHERE {query} AND id != :i AND state IN "
                                            f"({marks}) LIMIT 1"), {**args, "i": mail_id})).scalar()

    async def finish_mail(self, mail_id: str, state: str, *, pathway_id: str | None = None,
                          event_id: str | None = None, reason: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_in SET state = :s, pathway_id = :p, event_id = :e, reason = :r, "
                                    "done_at = :t WHERE id = :i"),
                               {"s": state, "p": pathway_id, "e": event_id, "r": reason, "t": self.clock.now_ms(), "i": mail_id})

    async def want_mdn(self, mail_id: str, to: str) -> None:
        """Its sender asked for a read receipt: owed to `to` once a member has read it in the room."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_in SET mdn_to = :to WHERE id = :i"), {"to": to.lower(), "i": mail_id})

    async def mdn_owed(self, pathway_id: str) -> list[MdnOwed]:
        """Posted mails of this pathway owing a read receipt: the mail's event, when it was posted."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT id, message_id, mdn_to, pathway_id, event_id, done_at FROM mail_in WHERE state = 'posted' "
                "AND mdn_to IS NOT NULL AND mdn_sent_at IS NULL AND pathway_id = :p"), {"p": pathway_id})
            return [MdnOwed(r.id, r.message_id, r.mdn_to, r.pathway_id, r.event_id, r.done_at or 0) for r in rows]

    async def claim_mdn(self, mail_id: str) -> bool:
        """True once per mail: the bridge answers a read-receipt request only once."""
        async with self.engine.begin() as conn:
            result = await conn.execute(text("UPDATE mail_in SET mdn_sent_at = :t WHERE id = :i AND mdn_sent_at IS NULL"),
                                        {"t": self.clock.now_ms(), "i": mail_id})
        return bool(result.rowcount)

    # -- outbox ---------------------------------------------------------------

    async def enqueue(self, *, source_event_id: str, pathway_id: str | None, room_id: str, message_id: str,
                      recipient: str, raw: bytes, give_up_at: int, corrects: str | None = None,
                      correction: str | None = None) -> bool:
        at = self.clock.now_ms()
        async with self.engine.begin() as conn:
            result = await conn.execute(text(
                "INSERT INTO mail_out (id, source_event_id, pathway_id, room_id, message_id, recipient, raw, state, "
                "next_attempt_at, give_up_at, created_at, corrects, correction) VALUES (:i, :e, :p, :r, :m, :to, :raw, "
                "'queued', :t, :g, :t, :c, :k) ON CONFLICT DO NOTHING"),
                {"i": uuid.uuid4().hex, "e": source_event_id, "p": pathway_id, "r": room_id, "m": message_id,
                 "to": recipient, "raw": bytes_param(self.engine, raw), "t": at, "g": give_up_at, "c": corrects,
                 "k": correction})
        if result.rowcount:
            self.new_mail_out.ring()
        return bool(result.rowcount)

    async def due(self, now: int, limit: int = 50) -> list[Outgoing]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT {_OUT} FROM mail_out WHERE state = 'queued' AND "
                                           "next_attempt_at <= :n ORDER BY next_attempt_at LIMIT :l"),
                                      {"n": now, "l": limit})
            return [_outgoing(r) for r in rows]

    async def next_due_at(self) -> int | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT MIN(next_attempt_at) FROM mail_out WHERE state = 'queued'"))).scalar()

    async def depth(self) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT COUNT(*) FROM mail_out WHERE state = 'queued'"))).scalar() or 0

    async def mark_sent(self, out_id: str) -> None:
        """Sent: the mail's text is no longer kept."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_out SET state = 'sent', sent_at = :t, raw = NULL, last_error = NULL "
                                    "WHERE id = :i AND state = 'queued'"), {"t": self.clock.now_ms(), "i": out_id})

    async def mark_retry(self, out_id: str, *, error: str, next_at: int, notice: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_out SET attempts = attempts + 1, next_attempt_at = :n, last_error = :e, "
                                    "retry_notice = COALESCE(:r, retry_notice) WHERE id = :i"),
                               {"n": next_at, "e": error[:300], "r": notice, "i": out_id})

    async def mark_failed(self, out_id: str, error: str, state: str = "failed") -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mail_out SET state = :s, last_error = :e, raw = NULL WHERE id = :i"),
                               {"s": state, "e": error[:300], "i": out_id})

    async def outgoing_by_message_id(self, message_id: str) -> Outgoing | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_OUT} FROM mail_out WHERE message_id = :m"),
                                      {"m": message_id})).first()
        return _outgoing(row) if row else None

    async def outgoing_by_id(self, out_id: str) -> Outgoing | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_OUT} FROM mail_out WHERE id = :i"), {"i": out_id})).first()
        return _outgoing(row) if row else None

    async def outgoing_by_event(self, event_id: str) -> Outgoing | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_OUT} FROM mail_out WHERE source_event_id = :e"),
                                      {"e": event_id})).first()
        return _outgoing(row) if row else None

    async def corrections_of(self, source_event_id: str, kind: str) -> list[Outgoing]:
        """The corrections (`edit`) or « retiré » notices (`retract`) of a mail, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT {_OUT} FROM mail_out WHERE corrects = :e AND correction = :k "
                                           "ORDER BY created_at"), {"e": source_event_id, "k": kind})
            return [_outgoing(r) for r in rows]

    async def replace_queued(self, out_id: str, raw: bytes) -> bool:
        """A mail still queued gets a new text (its author edited it); False when it has left meanwhile."""
        async with self.claimed(out_id), self.engine.begin() as conn:
            result = await conn.execute(text("UPDATE mail_out SET raw = :raw WHERE id = :i AND state = 'queued'"),
                                        {"raw": bytes_param(self.engine, raw), "i": out_id})
        return bool(result.rowcount)

    async def withdraw(self, out_id: str) -> bool:
        """A mail still queued never leaves (its author deleted it); False when it has left meanwhile."""
        async with self.claimed(out_id), self.engine.begin() as conn:
            result = await conn.execute(text("UPDATE mail_out SET state = 'withdrawn', raw = NULL, last_error = NULL "
                                             "WHERE id = :i AND state = 'queued'"), {"i": out_id})
        return bool(result.rowcount)

    async def record_receipt(self, out_id: str, kind: str, status: str) -> bool:
        """True the first time this receipt is seen (so it is shown once)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(text("INSERT INTO mail_receipt (mail_out_id, kind, status, at) VALUES "
                                             "(:i, :k, :s, :t) ON CONFLICT DO NOTHING"),
                                        {"i": out_id, "k": kind, "s": status, "t": self.clock.now_ms()})
            if result.rowcount and status in ("delivered", "failed", "displayed"):
                new = {"delivered": "delivered", "failed": "failed", "displayed": "read"}[status]
                await conn.execute(text("UPDATE mail_out SET state = :s WHERE id = :i AND state != 'read'"),
                                   {"s": new, "i": out_id})
        return bool(result.rowcount)
