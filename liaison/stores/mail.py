"""What the bot and the bridge share of the mail relay: quarantine, new threads asked in a room,
correspondents of a pathway, mail threads, and the bridge's small settings."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from liaison.db import bytes_param, bytes_value, fields
from liaison.stores import facts
from liaison.stores.facts import Altered
from liaison.stores.retention import Forget, Retention
from liaison.stores.base import Store

QUARANTINE_ROOM = "quarantine_room"
# Quarantine reasons a coordinator may overrule by routing the mail by hand (the others are unreadable
# or unsafe mails, and mails from outside the trusted list, which the policy refuses).
ROUTABLE = frozenset({"unknown_patient", "no_pathway", "unknown_pathway", "unroutable", "ins_mismatch",
                      "thread_conflict", "objection.person", "objection.profession", "objection.category",
                      "objection.unknown_profession", "puppet_removed", "puppet_banned"})
# (a mail kept out by an objection may be routed once it is lifted: routing decides again; a correspondent
# removed from the room comes back when routed by hand, a banned one is refused again by the bridge unless the
# ban was lifted meanwhile)


@dataclass(frozen=True)
class Quarantined:
    number: int
    mail_in_id: str
    reason_code: str
    reason: str
    from_address: str
    trusted: bool
    state: str
    pathway_id: str | None
    received_at: int
    decided_by: str | None = None


@dataclass(frozen=True)
class Thread:
    message_id: str
    pathway_id: str
    room_id: str
    event_id: str
    thread_root: str
    correspondent: str
    subject: str = ""


@dataclass(frozen=True)
class Request:
    event_id: str
    pathway_id: str
    room_id: str
    sender: str
    address: str
    body: str
    document_id: str | None = None   # !doc envoyer: the document to pack as IHE_XDM.ZIP


_Q_COLUMNS = ("number, mail_in_id, reason_code, reason, from_address, trusted, state, pathway_id, received_at, "
              "decided_by")
_T_COLUMNS = "message_id, pathway_id, room_id, event_id, thread_root, correspondent, subject"


def _quarantined(r) -> Quarantined:
    return Quarantined(r.number, r.mail_in_id, r.reason_code, r.reason, r.from_address, bool(r.trusted), r.state,
                       r.pathway_id, r.received_at, r.decided_by)


TEAM_BASES = ("ins", "hand")


class MailStore(Store):
    RETENTION = Retention(
        forget=(Forget("mss_request"), Forget("mss_thread"), Forget("mss_correspondent"),
                Forget("mss_quarantine", blank=("raw",))),
        kept={"mss_quarantine": "a routed mail's record (number, sender, reason, decision): its raw text is erased"},
        no_patient_data={"mss_setting": "the bridge's settings (the quarantine room's id)"})

    # -- settings -----------------------------------------------------------

    async def setting(self, name: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT value FROM mss_setting WHERE name = :n"), {"n": name})).scalar()

    async def set_setting(self, name: str, value: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM mss_setting WHERE name = :n"), {"n": name})
            await conn.execute(text("INSERT INTO mss_setting (name, value) VALUES (:n, :v)"), {"n": name, "v": value})

    # -- quarantine ---------------------------------------------------------

    async def quarantine(self, mail_in_id: str, *, reason_code: str, reason: str, from_address: str,
                         trusted: bool, raw: bytes) -> int:
        """Keep a mail aside (idempotent on the mail); returns its number.

        The number is the next free one: two writers may read the same maximum, the primary key decides.
        """
        for _attempt in range(20):
            try:
                return await self._quarantine(mail_in_id, reason_code, reason, from_address, trusted, raw)
            except IntegrityError:
                continue
        raise RuntimeError("quarantine: no free number after 20 attempts")

    async def _quarantine(self, mail_in_id, reason_code, reason, from_address, trusted, raw) -> int:
        async with self.engine.begin() as conn:
            known = (await conn.execute(text("SELECT number FROM mss_quarantine WHERE mail_in_id = :m"),
                                        {"m": mail_in_id})).scalar()
            if known is not None:
                return known
            number = int((await conn.execute(text("SELECT COALESCE(MAX(number), 0) + 1 FROM mss_quarantine"))).scalar_one())
            await conn.execute(text(
                "INSERT INTO mss_quarantine (number, mail_in_id, reason_code, reason, from_address, trusted, raw, "
                "state, received_at) VALUES (:n, :m, :c, :r, :f, :t, :raw, 'waiting', :at)"),
                {"n": number, "m": mail_in_id, "c": reason_code, "r": reason, "f": from_address,
                 "t": int(trusted), "raw": bytes_param(self.engine, raw), "at": self.clock.now_ms()})
        return number

    async def quarantined(self, states: tuple[str, ...] = ("waiting",)) -> list[Quarantined]:
        marks = ",".join(f":s{i}" for i in range(len(states)))
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT {_Q_COLUMNS} FROM mss_quarantine WHERE state IN ({marks}) "
                                           "ORDER BY number"), {f"s{i}": s for i, s in enumerate(states)})
            return [_quarantined(r) for r in rows]

    async def quarantined_one(self, number: int) -> Quarantined | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_Q_COLUMNS} FROM mss_quarantine WHERE number = :n"),
                                      {"n": number})).first()
        return _quarantined(row) if row else None

    async def quarantine_raw(self, number: int) -> bytes | None:
        async with self.engine.connect() as conn:
            raw = (await conn.execute(text("SELECT raw FROM mss_quarantine WHERE number = :n"), {"n": number})).scalar()
        return bytes_value(raw) or None

    async def purge_quarantine(self, received_before: int) -> list[int]:
        """Erase the raw text of the mails quarantined before `received_before` (ms); their record stays (number,
        dates, sender, reason, decision). One still waiting for a decision becomes `expired`: nothing is left to route.
        A mail being routed (decided, about to be posted) keeps its text. Returns the numbers erased."""
        async with self.engine.begin() as conn:
            rows = await conn.execute(text(
                "UPDATE mss_quarantine SET raw = NULL, "
                "state = CASE WHEN state = 'waiting' THEN 'expired' ELSE state END "
                "WHERE received_at < :t AND raw IS NOT NULL AND state != 'routing' RETURNING number"),
                {"t": received_before})
            return sorted(r.number for r in rows)

    async def decide_quarantined(self, number: int, *, state: str, actor: str, pathway_id: str | None = None) -> bool:
        """waiting -> routing (the bridge then posts it) or rejected; False when it was not waiting."""
        async with self.engine.begin() as conn:
            result = await conn.execute(text(
                "UPDATE mss_quarantine SET state = :s, decided_by = :a, decided_at = :t, pathway_id = :p "
                "WHERE number = :n AND state = 'waiting'"),
                {"s": state, "a": actor, "t": self.clock.now_ms(), "p": pathway_id, "n": number})
            if state == "rejected" and result.rowcount:
                await conn.execute(text("UPDATE mss_quarantine SET raw = NULL WHERE number = :n"), {"n": number})
        return bool(result.rowcount)

    async def finish_routing(self, number: int, notice_event: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mss_quarantine SET state = 'routed', raw = NULL, notice_event = "
                                    "COALESCE(:e, notice_event) WHERE number = :n"), {"n": number, "e": notice_event})

    async def routing_refused(self, number: int) -> None:
        """Routed by hand, then refused when it was to be posted: back to waiting, as it was."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mss_quarantine SET state = 'waiting', pathway_id = NULL "
                                    "WHERE number = :n AND state = 'routing'"), {"n": number})

    async def set_quarantine_notice(self, number: int, event_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mss_quarantine SET notice_event = :e WHERE number = :n"),
                               {"n": number, "e": event_id})

    # -- puppets (written by the bridge; the bot removes them from rooms) ---

    async def puppet_address(self, user_id: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT address FROM mss_puppet WHERE user_id = :u"),
                                       {"u": user_id})).scalar()

    async def forget_puppet_room(self, user_id: str, room_id: str) -> None:
        """The puppet was removed from the room: the bridge invites it again when a mail may be posted there."""
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM mss_puppet_room WHERE user_id = :u AND room_id = :r"),
                               {"u": user_id, "r": room_id})

    # -- correspondents and threads ---------------------------------------

    async def add_correspondent(self, pathway_id: str, address: str, basis: str) -> None:
        """`basis`: how its mail reached the pathway (ins, hand, thread, subaddress); the strongest is kept. A new
        correspondent, or a stronger basis, with its trace entry (its mail made it one: the address is the actor)."""
        at, address = self.clock.now_ms(), address.lower()
        async with self.engine.begin() as conn:
            before = (await conn.execute(text("SELECT basis FROM mss_correspondent WHERE pathway_id = :p AND "
                                              "address = :a"), {"p": pathway_id, "a": address})).scalar()
            await conn.execute(text("INSERT INTO mss_correspondent (pathway_id, address, first_at, basis) VALUES "
                                    "(:p, :a, :t, :b) ON CONFLICT (pathway_id, address) DO NOTHING"),
                               {"p": pathway_id, "a": address, "t": at, "b": basis})
            if basis in TEAM_BASES:
                await conn.execute(text("UPDATE mss_correspondent SET basis = :b WHERE pathway_id = :p AND "
                                        "address = :a"), {"p": pathway_id, "a": address, "b": basis})
            stronger = basis in TEAM_BASES and (basis != before or not await facts.vouches(
                conn, "mss_correspondent", [pathway_id, address]))   # the same basis again vouches for a row altered
            if before is None or stronger:
                await facts.record(conn, "mss_correspondent", [pathway_id, address], at=at, actor=address,
                                   rule="correspondent.recorded")

    async def correspondent_pathways(self, address: str) -> list[str]:
        """The pathways this address wrote about (whatever the basis): where its puppet may be a member."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT DISTINCT pathway_id FROM mss_correspondent WHERE address = :a"),
                                      {"a": address.lower()})
            return [r.pathway_id for r in rows]

    async def is_correspondent(self, pathway_id: str, address: str) -> bool:
        """It wrote about this patient in a way that shows it takes part in their care (the INS of a document,
        or a mail the coordination routed): a pathway code alone, or answering a mail, proves nothing."""
        return (await self.checked_correspondent(pathway_id, address))[0]

    async def checked_correspondent(self, pathway_id: str, address: str) -> tuple[bool, list[Altered]]:
        """`is_correspondent`, unless the trace does not vouch for its row as it is (then False, and named): what a
        sharing decision reads (liaison/stores/facts.py)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM mss_correspondent WHERE pathway_id = :p AND address = :a"),
                                       {"p": pathway_id, "a": address.lower()})).all()
            altered = await facts.check(conn, "mss_correspondent", rows, ids=[f"{pathway_id} {address.lower()}"])
        return bool(rows) and rows[0].basis in TEAM_BASES and not altered, altered

    async def add_thread(self, t: Thread) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(
                f"INSERT INTO mss_thread ({_T_COLUMNS}, at) VALUES (:m, :p, :r, :e, :root, :c, :subj, :t) "
                "ON CONFLICT (message_id) DO NOTHING"),
                {"m": t.message_id, "p": t.pathway_id, "r": t.room_id, "e": t.event_id, "root": t.thread_root,
                 "c": t.correspondent.lower(), "subj": t.subject[:200], "t": self.clock.now_ms()})

    async def thread_rooms(self) -> set[str]:
        """The rooms where a mail thread lives: the only ones where a message can be a reply to relay."""
        async with self.engine.connect() as conn:
            return {r.room_id for r in await conn.execute(text("SELECT DISTINCT room_id FROM mss_thread"))}

    async def thread_parties(self, thread_root: str) -> set[str]:
        """The external addresses of a thread: who wrote in it, and who was written to in it."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT DISTINCT correspondent FROM mss_thread WHERE thread_root = :r"),
                                      {"r": thread_root})
            return {r.correspondent for r in rows}

    async def thread_of_message(self, message_ids: list[str]) -> Thread | None:
        """The first of these Message-IDs (most specific first) the bridge knows."""
        async with self.engine.connect() as conn:
            for mid in message_ids:
                row = (await conn.execute(text(f"SELECT {_T_COLUMNS} FROM mss_thread WHERE message_id = :m"),
                                          {"m": mid})).first()
                if row:
                    return Thread(*fields(row))
        return None

    async def thread_of_event(self, event_id: str) -> Thread | None:
        """The mail a Matrix event is (or the latest mail of the thread it roots: the one a reply answers)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_T_COLUMNS} FROM mss_thread WHERE event_id = :e "
                                           "ORDER BY at DESC"), {"e": event_id})).first()
            if row is None:
                row = (await conn.execute(text(f"SELECT {_T_COLUMNS} FROM mss_thread WHERE thread_root = :e "
                                               "ORDER BY at DESC"), {"e": event_id})).first()
        return Thread(*fields(row)) if row else None

    async def thread_message_ids(self, thread_root: str) -> list[str]:
        """Every Message-ID of a thread, oldest first (for References)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT message_id FROM mss_thread WHERE thread_root = :r ORDER BY at"),
                                      {"r": thread_root})
            return [r.message_id for r in rows]

    # -- new threads asked from a room (!mss ecrire) ------------------------

    async def add_request(self, r: Request) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(text(
                "INSERT INTO mss_request (event_id, pathway_id, room_id, sender, address, body, document_id, state, "
                "created_at) VALUES (:e, :p, :r, :s, :a, :b, :d, 'waiting', :t) ON CONFLICT (event_id) DO NOTHING"),
                {"e": r.event_id, "p": r.pathway_id, "r": r.room_id, "s": r.sender, "a": r.address.lower(),
                 "b": r.body, "d": r.document_id, "t": self.clock.now_ms()})
        return bool(result.rowcount)

    async def waiting_requests(self) -> list[Request]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT event_id, pathway_id, room_id, sender, address, body, document_id FROM "
                                           "mss_request WHERE state = 'waiting' ORDER BY created_at"))
            return [Request(*fields(r)) for r in rows]

    async def finish_request(self, event_id: str, state: str = "queued") -> None:
        """Handed to the outbox (queued: the text lives there now), or given up (failed); the text is dropped."""
        if state not in ("queued", "failed", "refused"):
            raise ValueError(f"mss_request: unknown final state {state!r}")
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE mss_request SET state = :s, body = NULL WHERE event_id = :e"),
                               {"s": state, "e": event_id})
