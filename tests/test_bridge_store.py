"""The bridge's tables (BridgeStore) and the relay's shared tables (MailStore), on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import base64
from datetime import date

import pytest
from sqlalchemy import text

from bridge.doorbell import Doorbell
from bridge.store import BridgeStore
from liaison.db import bundled_migrations, create_engine, migrate, schema_version
from liaison.stores.mail import MailStore, Request, Thread
from liaison.clock import system_now_ms as now_ms
from liaison.stores.pathways import PathwayStore



@pytest.fixture
def store(engine) -> BridgeStore:
    return BridgeStore(engine)


@pytest.fixture
def mail(engine) -> MailStore:
    return MailStore(engine)


def _event(event_id: str, room: str = "!r:hs", body: str = "ciphertext") -> dict:
    return {"event_id": event_id, "room_id": room, "sender": "@n:hs", "type": "m.room.encrypted",
            "content": {"ciphertext": body}}


async def _scalar(engine, sql: str, **args):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), args)).scalar()


async def _later_tick() -> None:
    """Timestamps are in milliseconds: make sure the next row gets a later one."""
    await asyncio.sleep(0.003)


# -- appservice transactions ------------------------------------------------


async def test_a_transaction_recorded_twice_stores_its_events_once(store, engine):
    events = [_event("$a"), _event("$b")]
    assert await store.record_transaction("txn1", events) == (2, False)
    assert await store.record_transaction("txn1", events) == (0, True), "a resend: nothing new"
    assert await _scalar(engine, "SELECT COUNT(*) FROM as_event") == 2
    assert await _scalar(engine, "SELECT COUNT(*) FROM as_transaction") == 1
    assert sorted(e["event_id"] for e in await store.pending_events()) == ["$a", "$b"]


async def test_a_known_transaction_id_with_new_events_keeps_them(store, engine):
    """After a restart Synapse numbers its transactions from 1 again: the id is known, the events are not."""
    assert await store.record_transaction("1", [_event("$a")]) == (1, False)
    assert await store.record_transaction("1", [_event("$a"), _event("$c")]) == (1, True)
    assert sorted(e["event_id"] for e in await store.pending_events()) == ["$a", "$c"]
    await store.finish_event("$c", "done")
    assert await store.record_transaction("1", [_event("$c")]) == (0, True), "a finished event is not taken again"
    assert [e["event_id"] for e in await store.pending_events()] == ["$a"]


async def test_an_event_present_in_two_transactions_is_stored_once(store, engine):
    assert await store.record_transaction("txn1", [_event("$a")]) == (1, False)
    assert await store.record_transaction("txn2", [_event("$a"), _event("$b")]) == (1, False)
    assert await _scalar(engine, "SELECT COUNT(*) FROM as_event WHERE event_id = '$a'") == 1
    assert sorted(e["event_id"] for e in await store.pending_events()) == ["$a", "$b"]


async def test_malformed_events_are_skipped_not_fatal(store):
    assert await store.record_transaction("txn1", ["not a dict", {"no": "id"}, {"event_id": 5}, _event("$ok")]) \
        == (1, False)
    assert [e["event_id"] for e in await store.pending_events()] == ["$ok"]


async def test_finished_events_leave_the_queue_and_lose_their_ciphertext(store, engine):
    await store.record_transaction("txn1", [_event("$a", body="SECRET"), _event("$b"), _event("$c")])
    pending = {e["event_id"]: e for e in await store.pending_events()}
    assert pending["$a"] == _event("$a", body="SECRET"), "the event as pushed, until handled"
    assert len(await store.pending_events(limit=2)) == 2
    await store.finish_event("$a", "done")
    await store.finish_event("$b", "ignored")
    assert [e["event_id"] for e in await store.pending_events()] == ["$c"]
    async with engine.connect() as conn:
        rows = {r.event_id: r for r in await conn.execute(text("SELECT event_id, state, event_json, done_at "
                                                               "FROM as_event"))}
    assert rows["$a"].state == "done" and rows["$b"].state == "ignored"
    assert rows["$a"].event_json == "{}" and "SECRET" not in rows["$a"].event_json
    assert rows["$a"].done_at is not None and rows["$c"].done_at is None


async def test_event_attempts_are_counted(store):
    await store.record_transaction("txn1", [_event("$a")])
    assert [await store.event_attempt("$a") for _ in range(3)] == [1, 2, 3]


# -- puppets ----------------------------------------------------------------


async def test_puppets_are_keyed_by_lowercase_address(store):
    from bridge.store import Puppet

    await store.add_puppet(Puppet("Dr.Martin@Hopital.MSSante.fr", "@mss_martin:hs", "Dr Martin"))
    await store.add_puppet(Puppet("dr.martin@hopital.mssante.fr", "@mss_martin:hs", "Dr Martin (CHU)"))
    p = await store.puppet("DR.MARTIN@hopital.mssante.fr")
    assert p is not None and p.user_id == "@mss_martin:hs" and p.display_name == "Dr Martin (CHU)"
    assert not await store.puppet_in_room("@mss_martin:hs", "!r:hs")
    await store.add_puppet_room("@mss_martin:hs", "!r:hs")
    await store.add_puppet_room("@mss_martin:hs", "!r:hs")
    assert await store.puppet_in_room("@mss_martin:hs", "!r:hs")


# -- mails seen ---------------------------------------------------------------


async def test_begin_mail_is_idempotent_on_mailbox_uidvalidity_uid(store):
    first = await store.begin_mail("INBOX", 7, 42)
    assert await store.begin_mail("INBOX", 7, 42) == first
    assert await store.mail_state("INBOX", 7, 42) == (first, "received")
    others = {await store.begin_mail("INBOX", 8, 42), await store.begin_mail("INBOX", 7, 43),
              await store.begin_mail("Other", 7, 42)}
    assert first not in others and len(others) == 3
    assert await store.mail_state("INBOX", 7, 99) is None


async def test_duplicate_of_finds_an_earlier_handled_mail_by_message_id(store):
    earlier = await store.begin_mail("INBOX", 1, 1)
    assert await store.duplicate_of(earlier, "m1@ext", "hash-a") is None
    await store.finish_mail(earlier, "posted", pathway_id="pw", event_id="$e")
    again = await store.begin_mail("INBOX", 1, 2)
    assert await store.duplicate_of(again, "m1@ext", "hash-b") == earlier, "same Message-ID, other content"
    other = await store.begin_mail("INBOX", 1, 3)
    assert await store.duplicate_of(other, "m2@ext", "hash-a") is None, "a Message-ID wins over the content hash"


async def test_duplicate_of_uses_the_content_hash_when_there_is_no_message_id(store):
    earlier = await store.begin_mail("INBOX", 1, 1)
    await store.duplicate_of(earlier, None, "hash-a")
    await store.finish_mail(earlier, "quarantined", reason="unroutable")
    again = await store.begin_mail("INBOX", 1, 2)
    assert await store.duplicate_of(again, None, "hash-a") == earlier
    other = await store.begin_mail("INBOX", 1, 3)
    assert await store.duplicate_of(other, None, "hash-b") is None


async def test_duplicate_of_ignores_a_mail_still_received_and_itself(store):
    crashed = await store.begin_mail("INBOX", 1, 1)
    assert await store.duplicate_of(crashed, "m1@ext", "hash-a") is None, "never its own duplicate"
    replay = await store.begin_mail("INBOX", 1, 2)
    assert await store.duplicate_of(replay, "m1@ext", "hash-a") is None, "the first copy was never handled"
    assert await store.duplicate_of(crashed, "m1@ext", "hash-a") is None, "replayed after a crash: not a duplicate"
    await store.finish_mail(replay, "duplicate")
    third = await store.begin_mail("INBOX", 1, 3)
    assert await store.duplicate_of(third, "m1@ext", "hash-a") is None, "a duplicate is not an original"


async def test_claim_mdn_is_true_once(store):
    mail_id = await store.begin_mail("INBOX", 1, 1)
    assert await store.claim_mdn(mail_id) is True
    assert await store.claim_mdn(mail_id) is False
    assert await store.claim_mdn("no-such-mail") is False


# -- outbox -------------------------------------------------------------------


async def _enqueue(store: BridgeStore, n: int = 1, **over) -> bool:
    args = dict(source_event_id=f"$ev{n}", pathway_id="pw", room_id="!r:hs", message_id=f"m{n}@liaison",
                recipient="dr@ext.mssante.fr", raw=b"Subject: x\r\n\r\ncorps", give_up_at=now_ms() + 3_600_000)
    return await store.enqueue(**{**args, **over})


async def test_a_queue_rings_its_loop_once_a_new_row_is_committed_and_only_then(store):
    """The outbox and the relay loops sleep up to 30 s and 0.5 s: a write that did not ring would only show as a
    slower relay, so the rings are counted here."""
    assert (store.new_mail_out.rings, store.new_events.rings) == (0, 0)
    assert await _enqueue(store, 1)
    assert not await _enqueue(store, 1), "a mail queued twice rings once"
    assert store.new_mail_out.rings == 1 and await store.new_mail_out.wait(0)
    event = {"event_id": "$e1", "room_id": "!r:hs", "sender": "@n:hs", "type": "m.room.encrypted", "content": {}}
    assert await store.record_events([event]) == 1 and store.new_events.rings == 1
    assert await store.record_events([event]) == 0 and store.new_events.rings == 1, "an event seen before: no ring"
    assert (await store.record_transaction("t1", [event, {**event, "event_id": "$e2"}]))[0] == 1
    assert store.new_events.rings == 2 and store.new_mail_out.rings == 1


async def test_a_doorbell_wakes_its_loop_at_once_and_only_for_a_new_ring():
    bell = Doorbell()
    waiting = asyncio.create_task(bell.wait(30))
    asyncio.get_running_loop().call_soon(bell.ring)   # after the task's first step: it is waiting by then
    assert await asyncio.wait_for(waiting, 1) is True, "rung: the loop does not wait for its timer"
    assert await bell.wait(0.01) is False, "the ring was heard: the next wait waits for a new one"
    bell.ring()
    assert await bell.wait(0) is True, "a ring while the loop was busy is not lost"


async def test_enqueue_dedupes_on_source_event_and_on_message_id(store):
    assert await _enqueue(store, 1)
    assert not await _enqueue(store, 1, message_id="other@liaison"), "same Matrix event"
    assert not await _enqueue(store, 2, message_id="m1@liaison"), "same Message-ID"
    assert await store.depth() == 1
    out = await store.outgoing_by_event("$ev1")
    assert out.raw == b"Subject: x\r\n\r\ncorps" and out.state == "queued" and out.attempts == 0
    assert (await store.outgoing_by_message_id("m1@liaison")).id == out.id
    assert (await store.outgoing_by_id(out.id)).source_event_id == "$ev1"
    assert await store.outgoing_by_id("nope") is None and await store.outgoing_by_message_id("nope") is None


async def test_due_respects_next_attempt_at_and_retries_are_counted(store):
    before = now_ms() - 1
    await _enqueue(store, 1)
    await _enqueue(store, 2)
    assert await store.due(before) == []
    due = await store.due(now_ms())
    assert {o.source_event_id for o in due} == {"$ev1", "$ev2"}
    first = (await store.outgoing_by_event("$ev1")).id
    later = now_ms() + 60_000
    await store.mark_retry(first, error="451 try later " + "x" * 500, next_at=later, notice="$notice")
    await store.mark_retry(first, error="451 again", next_at=later)
    assert [o.source_event_id for o in await store.due(now_ms())] == ["$ev2"]
    assert [o.source_event_id for o in await store.due(later)] == ["$ev2", "$ev1"], "oldest attempt first"
    out = await store.outgoing_by_id(first)
    assert out.attempts == 2 and out.retry_notice == "$notice" and out.state == "queued"
    assert len(await store.due(later, limit=1)) == 1
    assert await store.next_due_at() <= now_ms()


async def test_mark_sent_drops_the_raw_mail_and_leaves_the_queue(store, engine):
    await _enqueue(store, 1)
    out = await store.outgoing_by_event("$ev1")
    await store.mark_sent(out.id)
    sent = await store.outgoing_by_id(out.id)
    assert sent.state == "sent" and sent.raw == b""
    assert await _scalar(engine, "SELECT raw FROM mail_out WHERE id = :i", i=out.id) is None
    assert await store.due(now_ms() + 10**9) == [] and await store.depth() == 0
    assert await store.next_due_at() is None
    await store.mark_sent(out.id)
    assert await _scalar(engine, "SELECT sent_at FROM mail_out WHERE id = :i", i=out.id) is not None


async def test_mark_failed_drops_the_raw_mail_with_its_reason(store, engine):
    await _enqueue(store, 1)
    await _enqueue(store, 2)
    one, two = (await store.outgoing_by_event("$ev1")).id, (await store.outgoing_by_event("$ev2")).id
    await store.mark_failed(one, "550 no such user")
    await store.mark_failed(two, "abandonné", "abandoned")
    assert (await store.outgoing_by_id(one)).state == "failed"
    assert (await store.outgoing_by_id(two)).state == "abandoned"
    assert await _scalar(engine, "SELECT COUNT(*) FROM mail_out WHERE raw IS NOT NULL") == 0
    assert await _scalar(engine, "SELECT last_error FROM mail_out WHERE id = :i", i=one) == "550 no such user"
    assert await store.depth() == 0


async def test_receipts_are_recorded_once_and_move_the_state(store):
    await _enqueue(store, 1)
    out = (await store.outgoing_by_event("$ev1")).id
    await store.mark_sent(out)
    assert await store.record_receipt(out, "dsn", "delivered") is True
    assert await store.record_receipt(out, "dsn", "delivered") is False
    assert (await store.outgoing_by_id(out)).state == "delivered"
    assert await store.record_receipt(out, "mdn", "displayed") is True
    assert (await store.outgoing_by_id(out)).state == "read"
    assert await store.record_receipt(out, "dsn", "delivered") is False
    assert await store.record_receipt(out, "dsn", "delayed") is True, "a new status is a new receipt"
    assert (await store.outgoing_by_id(out)).state == "read", "read is final"


async def test_a_failure_receipt_marks_the_mail_failed(store):
    await _enqueue(store, 1)
    out = (await store.outgoing_by_event("$ev1")).id
    await store.mark_sent(out)
    assert await store.record_receipt(out, "dsn", "failed")
    assert (await store.outgoing_by_id(out)).state == "failed"


# -- MailStore: quarantine ----------------------------------------------------


async def _mail_in(store: BridgeStore, uid: int) -> str:
    return await store.begin_mail("INBOX", 1, uid)


async def _quarantine(mail: MailStore, mail_id: str, raw: bytes = b"raw mail", **over) -> int:
    args = dict(reason_code="unroutable", reason="impossible de savoir", from_address="dr@ext.mssante.fr",
                trusted=True, raw=raw)
    return await mail.quarantine(mail_id, **{**args, **over})


async def test_quarantine_numbers_1_2_3_and_is_idempotent_per_mail(store, mail):
    a, b, c = [await _mail_in(store, uid) for uid in (1, 2, 3)]
    assert await _quarantine(mail, a) == 1
    assert await _quarantine(mail, b, reason_code="untrusted", trusted=False) == 2
    assert await _quarantine(mail, a, reason_code="other") == 1, "same mail, same number"
    assert await _quarantine(mail, c) == 3
    waiting = await mail.quarantined()
    assert [(q.number, q.mail_in_id) for q in waiting] == [(1, a), (2, b), (3, c)]
    assert waiting[0].reason_code == "unroutable", "the first quarantine of a mail is kept"
    assert waiting[1].trusted is False and waiting[0].trusted is True and waiting[0].state == "waiting"
    assert (await mail.quarantined_one(2)).reason_code == "untrusted"
    assert await mail.quarantined_one(99) is None
    assert await mail.quarantine_raw(3) == b"raw mail"


async def test_concurrent_quarantines_get_distinct_numbers(store, mail):
    """The inbound loop is sequential today; the numbering must still hold if two writers meet."""
    ids = [await _mail_in(store, uid) for uid in range(1, 9)]
    numbers = await asyncio.gather(*(_quarantine(mail, m) for m in ids))
    assert sorted(numbers) == list(range(1, 9))


async def test_a_quarantined_mail_is_decided_once_from_waiting(store, mail):
    n = await _quarantine(mail, await _mail_in(store, 1))
    assert await mail.decide_quarantined(n, state="routing", actor="@coord:hs", pathway_id="pw1") is True
    assert await mail.decide_quarantined(n, state="rejected", actor="@other:hs") is False
    q = await mail.quarantined_one(n)
    assert q.state == "routing" and q.pathway_id == "pw1"
    assert await mail.quarantine_raw(n) == b"raw mail", "kept until posted"
    assert await mail.quarantined() == [] and [x.number for x in await mail.quarantined(("routing",))] == [n]
    await mail.finish_routing(n, "$notice")
    q = await mail.quarantined_one(n)
    assert q.state == "routed" and await mail.quarantine_raw(n) is None
    assert await mail.decide_quarantined(n, state="routing", actor="@coord:hs", pathway_id="pw2") is False
    assert await mail.decide_quarantined(999, state="rejected", actor="@coord:hs") is False


async def test_a_rejected_mail_loses_its_raw_text(store, mail, engine):
    n = await _quarantine(mail, await _mail_in(store, 1), raw=b"\x00\xffbinary")
    assert await mail.quarantine_raw(n) == b"\x00\xffbinary"
    assert await mail.decide_quarantined(n, state="rejected", actor="@coord:hs") is True
    assert await mail.quarantine_raw(n) is None
    assert await _scalar(engine, "SELECT decided_by FROM mss_quarantine WHERE number = :n", n=n) == "@coord:hs"
    assert await mail.decide_quarantined(n, state="routing", actor="@coord:hs", pathway_id="pw") is False


async def test_finish_routing_keeps_an_earlier_notice_when_given_none(store, mail, engine):
    n = await _quarantine(mail, await _mail_in(store, 1))
    await mail.set_quarantine_notice(n, "$first")
    await mail.decide_quarantined(n, state="routing", actor="@coord:hs", pathway_id="pw")
    await mail.finish_routing(n, None)
    assert await _scalar(engine, "SELECT notice_event FROM mss_quarantine WHERE number = :n", n=n) == "$first"


async def test_quarantine_raw_keeps_every_byte_without_inflating_on_sqlite(store, mail, engine):
    raw = b"\r\n\x00abc\xff" * 1000
    n = await _quarantine(mail, await _mail_in(store, 1), raw=raw)
    stored = await _scalar(engine, "SELECT raw FROM mss_quarantine WHERE number = :n", n=n)
    assert await mail.quarantine_raw(n) == raw
    if engine.dialect.name == "sqlite":   # bytes as they are: a 20 MB mail is not 27 MB of text twice over
        assert stored == raw
    else:                                 # PostgreSQL's TEXT column: base64
        assert base64.b64decode(stored) == raw


async def test_a_quarantined_mail_stored_as_base64_before_still_reads(store, mail, engine):
    n = await _quarantine(mail, await _mail_in(store, 1), raw=b"x")
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE mss_quarantine SET raw = :r WHERE number = :n"),
                           {"r": base64.b64encode(b"\r\n\x00abc").decode(), "n": n})
    assert await mail.quarantine_raw(n) == b"\r\n\x00abc"


async def test_retention_erases_old_raw_texts_and_keeps_the_records(store, mail, engine):
    old_waiting, old_rejected, old_routing, recent = [await _quarantine(mail, await _mail_in(store, uid))
                                                      for uid in (1, 2, 3, 4)]
    await mail.decide_quarantined(old_rejected, state="rejected", actor="@coord:hs")
    await mail.decide_quarantined(old_routing, state="routing", actor="@coord:hs", pathway_id="pw")
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE mss_quarantine SET received_at = 1000 WHERE number != :n"), {"n": recent})
    assert await mail.purge_quarantine(now_ms() - 30 * 86_400_000) == [old_waiting]
    assert await mail.quarantine_raw(old_waiting) is None and await mail.quarantine_raw(recent) == b"raw mail"
    assert await mail.quarantine_raw(old_routing) == b"raw mail", "decided and about to be posted: kept"
    expired = await mail.quarantined_one(old_waiting)
    assert (expired.state, expired.reason_code, expired.from_address) == ("expired", "unroutable", "dr@ext.mssante.fr")
    assert [q.number for q in await mail.quarantined()] == [recent], "nothing left to route"
    assert not await mail.decide_quarantined(old_waiting, state="routing", actor="@coord:hs", pathway_id="pw")
    assert await mail.purge_quarantine(now_ms() - 30 * 86_400_000) == [], "once"


async def test_the_poison_counter_counts_passes_that_did_not_end(store, engine):
    mail_id = await _mail_in(store, 1)
    assert [await store.count_attempt(mail_id) for _ in range(3)] == [1, 2, 3]   # three passes that died
    await store.uncount_attempt(mail_id)   # one that ended in « later »
    assert await store.count_attempt(mail_id) == 3
    assert await _scalar(engine, "SELECT failures FROM mail_in WHERE id = :i", i=mail_id) == 3, "in the database"
    other = await _mail_in(store, 2)
    await store.uncount_attempt(other)
    assert await store.count_attempt(other) == 1, "never below zero"


# -- MailStore: threads, correspondents, requests, settings --------------------


def _thread(mid: str, event: str, root: str, pathway: str = "pw1", subject: str = "Objet") -> Thread:
    return Thread(mid, pathway, "!r:hs", event, root, "Dr@Ext.MSSante.fr", subject)


async def test_add_thread_is_idempotent_and_lowercases_the_correspondent(mail):
    await mail.add_thread(_thread("a@ext", "$a", "$a", subject="x" * 300))
    await mail.add_thread(_thread("a@ext", "$other", "$other", pathway="pw2"))
    t = await mail.thread_of_message(["a@ext"])
    assert (t.event_id, t.pathway_id, t.correspondent) == ("$a", "pw1", "dr@ext.mssante.fr")
    assert t.subject == "x" * 200


async def test_thread_of_message_takes_the_first_known_id_in_the_given_order(mail):
    await mail.add_thread(_thread("root@ext", "$root", "$root"))
    await _later_tick()
    await mail.add_thread(_thread("reply@liaison", "$reply", "$root"))
    assert (await mail.thread_of_message(["unknown@x", "reply@liaison", "root@ext"])).event_id == "$reply"
    assert (await mail.thread_of_message(["root@ext", "reply@liaison"])).event_id == "$root"
    assert await mail.thread_of_message(["unknown@x"]) is None
    assert await mail.thread_of_message([]) is None


async def test_thread_of_event_by_event_id_then_by_thread_root(mail):
    await mail.add_thread(_thread("root@ext", "$root", "$root"))
    await _later_tick()
    await mail.add_thread(_thread("r1@liaison", "$r1", "$root"))
    await _later_tick()
    await mail.add_thread(_thread("r2@liaison", "$r2", "$root"))
    assert (await mail.thread_of_event("$r1")).message_id == "r1@liaison", "the event's own mail"
    assert (await mail.thread_of_event("$root")).message_id == "root@ext", "an event id wins over a root"
    # a plain Matrix reply in the thread (no mail of its own) finds the thread's latest mail to answer
    await mail.add_thread(_thread("o1@ext", "$o1", "$thread-without-own-mail"))
    await _later_tick()
    await mail.add_thread(_thread("o2@liaison", "$o2", "$thread-without-own-mail"))
    assert (await mail.thread_of_event("$thread-without-own-mail")).message_id == "o2@liaison", \
        "In-Reply-To is the thread's latest mail"
    assert await mail.thread_of_event("$nothing") is None


async def test_thread_message_ids_oldest_first(mail):
    for mid in ("m1@ext", "m2@liaison", "m3@ext"):
        await mail.add_thread(_thread(mid, "$" + mid, "$root"))
        await _later_tick()
    await mail.add_thread(_thread("elsewhere@ext", "$x", "$other-root"))
    assert await mail.thread_message_ids("$root") == ["m1@ext", "m2@liaison", "m3@ext"]
    assert await mail.thread_message_ids("$none") == []


async def test_correspondents_per_pathway_case_insensitive(mail):
    assert not await mail.is_correspondent("pw1", "dr@ext.mssante.fr")
    await mail.add_correspondent("pw1", "Dr@Ext.MSSante.fr", "ins")
    await mail.add_correspondent("pw1", "dr@ext.mssante.fr", "ins")
    assert await mail.is_correspondent("pw1", "DR@EXT.MSSANTE.FR")
    assert not await mail.is_correspondent("pw2", "dr@ext.mssante.fr")


async def test_a_pathway_code_alone_makes_no_correspondent(mail):
    """Writing to a pathway's sub-address, or answering one of our mails, proves no part in the patient's care."""
    for basis in ("subaddress", "thread"):
        await mail.add_correspondent("pw1", "labo@ext.mssante.fr", basis)
        assert not await mail.is_correspondent("pw1", "labo@ext.mssante.fr")
    await mail.add_correspondent("pw1", "labo@ext.mssante.fr", "hand")   # the coordination routed one of its mails
    assert await mail.is_correspondent("pw1", "labo@ext.mssante.fr")
    await mail.add_correspondent("pw1", "labo@ext.mssante.fr", "subaddress")
    assert await mail.is_correspondent("pw1", "labo@ext.mssante.fr"), "the strongest basis is kept"


async def test_requests_are_idempotent_and_lose_their_body_once_queued(mail, engine):
    r = Request("$ask", "pw1", "!r:hs", "@gp:hs", "Dr@Ext.MSSante.fr", "Bonjour, pouvez-vous…")
    assert await mail.add_request(r) is True
    assert await mail.add_request(r) is False
    assert await mail.waiting_requests() == [Request("$ask", "pw1", "!r:hs", "@gp:hs", "dr@ext.mssante.fr",
                                                     "Bonjour, pouvez-vous…")]
    await mail.finish_request("$ask")
    assert await mail.waiting_requests() == []
    assert await _scalar(engine, "SELECT body FROM mss_request WHERE event_id = '$ask'") is None
    assert await _scalar(engine, "SELECT state FROM mss_request WHERE event_id = '$ask'") == "queued"


async def test_settings_are_replaced(mail):
    assert await mail.setting("quarantine_room") is None
    await mail.set_setting("quarantine_room", "!q1:hs")
    await mail.set_setting("quarantine_room", "!q2:hs")
    assert await mail.setting("quarantine_room") == "!q2:hs"


# -- migration 6 -> 7 ---------------------------------------------------------


async def test_a_database_at_version_6_with_data_migrates_to_7(db_url):
    migrations = bundled_migrations()
    assert [m.version for m in migrations][:7] == list(range(1, 8))
    eng = create_engine(db_url)
    try:
        assert await migrate(eng, migrations[:6]) == 6
        pathways = PathwayStore(eng)
        patient = await pathways.add_patient(ins="148057512345643", oid="1.2.250.1.213.1.4.10",
                                             birth_name="Durand", first_names="Marcel", birth_date=date(1948, 5, 12),
                                             sex="M", actor="@c:hs")
        await pathways.add_pathway(patient_id=patient.id, type_key="diabete", code="P-AAAAA", actor="@c:hs")
        assert await migrate(eng, migrations[:7]) == 7
        assert await schema_version(eng) == 7
        assert (await pathways.patient_by_ins("148057512345643")).id == patient.id
        store, mail = BridgeStore(eng), MailStore(eng)
        assert await store.record_transaction("t", [_event("$a")]) == (1, False)
        assert await _quarantine(mail, await store.begin_mail("INBOX", 1, 1)) == 1
    finally:
        await eng.dispose()
