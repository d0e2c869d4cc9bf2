"""Retention declared by each store (liaison/stores/retention.py): every table of the migrated schema is declared by its store
(forgotten with its pathway, kept on purpose, or holding no patient data), and the archive forgets exactly what the
stores declare, for one pathway and no other."""
from __future__ import annotations

from datetime import date

from sqlalchemy import text

from bot.archive import RETAINED
from bot.store import BotStore
from bridge.store import BridgeStore
from liaison.db import open_database
from liaison.stores.documents import DocumentStore, NewFile
from liaison.stores.mail import MailStore, Request, Thread
from liaison.stores.pathways import PathwayStore
from liaison.stores.retention import Retention, forget_pathway, shared

# Tables no store owns, with why they hold no patient data.
NOT_A_STORE = {"schema_version": "the schema's version number (liaison/db.py)"}

EVERY_STORE = (*shared(), BotStore.RETENTION, BridgeStore.RETENTION)


async def _schema(tmp_path) -> dict[str, set[str]]:
    """Each table of the schema after every migration (SQLite), with its columns."""
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}")
    try:
        async with engine.connect() as conn:
            names = [r.name for r in await conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))]
            return {n: {c.name for c in await conn.execute(text(f"PRAGMA table_info({n})"))} for n in names}
    finally:
        await engine.dispose()


def undeclared(tables: set[str], declared: tuple[Retention, ...]) -> set[str]:
    known = set(NOT_A_STORE).union(*(r.tables() for r in declared))
    return tables - known


async def test_every_table_is_declared_by_a_store(tmp_path):
    """A new table holding patient data must say what a pathway's archive does to it (a Forget in its store's
    RETENTION), or why it stays (kept), or that it holds none (no_patient_data)."""
    schema = await _schema(tmp_path)
    missing = undeclared(set(schema), EVERY_STORE)
    assert not missing, f"tables in no store's RETENTION (liaison/stores/retention.py): {sorted(missing)}"
    ghosts = set().union(*(r.tables() for r in EVERY_STORE)) - set(schema)
    assert not ghosts, f"declared tables the schema does not have: {sorted(ghosts)}"


async def test_a_table_no_store_declares_is_found(tmp_path):
    """The check itself: a table added by a migration and declared nowhere is reported."""
    schema = await _schema(tmp_path)
    assert undeclared(set(schema) | {"task_reminder"}, EVERY_STORE) == {"task_reminder"}
    assert "pathway_summary" in undeclared(set(schema), tuple(r for r in EVERY_STORE if r is not PathwayStore.RETENTION))


async def test_a_table_is_either_patient_data_or_not(tmp_path):
    """No table is said to hold no patient data by one store and patient data (forgotten or kept) by another; every
    Forget names columns the table has."""
    schema = await _schema(tmp_path)
    patient = set().union(*({f.table for f in r.forget} | set(r.kept) for r in EVERY_STORE))
    clean = set().union(*(set(r.no_patient_data) for r in EVERY_STORE))
    assert not patient & clean
    for r in EVERY_STORE:
        for f in r.forget:
            assert {f.key, *f.blank} <= schema[f.table], f
        assert all(why.strip() for why in (*r.kept.values(), *r.no_patient_data.values())), "each with its reason"


def test_the_archive_asks_every_store_that_forgets():
    """A store declaring a Forget the archive does not ask would keep its rows forever."""
    forgetting = [r for r in EVERY_STORE if r.forget]
    assert forgetting and all(any(r is a for a in RETAINED) for r in forgetting)
    assert BridgeStore.RETENTION.forget == (), "the archive runs in the bot: it cannot ask the bridge's own store"


async def _pathway_with_everything(engine, code: str, uid: int) -> str:
    pathways, docs, mail = PathwayStore(engine), DocumentStore(engine), MailStore(engine)
    patient = (await pathways.patient_by_ins("148057512345643")
               or await pathways.add_patient(ins="148057512345643", oid="1.2.250.1.213.1.4.10", birth_name="Durand",
                                             first_names="Marcel", birth_date=date(1948, 5, 12), sex="M",
                                             actor="@c:hs"))
    pw = await pathways.add_pathway(patient_id=patient.id, type_key=code, code=code, actor="@c:hs")
    room = f"!{code}:hs"
    await pathways.update(pw.id, status="closed", room_id=room)
    await pathways.set_member(pw.id, "@gp:hs", "left", "archive.coordination")
    await pathways.set_summary(pw.id, "traitements", "furosémide", "@gp:hs")
    await pathways.summary_posted(pw.id, f"$summary-{code}", frozenset({("@gp:hs", "DEV1")}))
    await docs.record([NewFile(f"$file-{code}", pw.id, room, "element", "@gp:hs", "ordonnance.pdf", {"url": "mxc://x"})])
    assert await docs.first_time(pw.id, "no_antivirus")
    await mail.add_request(Request(f"$req-{code}", pw.id, room, "@gp:hs", "cardio@chu.mssante.fr", "Bonjour"))
    await mail.add_thread(Thread(f"<{code}@chu>", pw.id, room, f"$mail-{code}", f"$mail-{code}", "cardio@chu.mssante.fr"))
    await mail.add_correspondent(pw.id, "cardio@chu.mssante.fr", "ins")
    mail_id = await BridgeStore(engine).begin_mail("INBOX", 1, uid)
    number = await mail.quarantine(mail_id, reason_code="unroutable", reason="…", from_address="cardio@chu.mssante.fr",
                                   trusted=True, raw=b"Subject: patient\r\n\r\nTexte du courriel")
    await mail.decide_quarantined(number, state="routing", actor="@c:hs", pathway_id=pw.id)
    return pw.id


async def _rows(engine, pathway_id: str) -> dict[str, int]:
    counts = {}
    async with engine.connect() as conn:
        for table in ("pathway_summary", "pathway_summary_reader", "document", "document_notice", "mss_request",
                      "mss_thread", "mss_correspondent", "pathway_member"):
            counts[table] = (await conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE pathway_id = :p"),
                                                {"p": pathway_id})).scalar()
        counts["quarantine_raw"] = (await conn.execute(text(
            "SELECT COUNT(*) FROM mss_quarantine WHERE pathway_id = :p AND raw IS NOT NULL"), {"p": pathway_id})).scalar()
        counts["summary_event"] = (await conn.execute(text(
            "SELECT COUNT(*) FROM pathway WHERE id = :p AND summary_event_id IS NOT NULL"), {"p": pathway_id})).scalar()
    return counts


async def test_the_archive_forgets_what_the_stores_declare_for_that_pathway_only(engine):
    archived = await _pathway_with_everything(engine, "P-AAAAA", 1)
    other = await _pathway_with_everything(engine, "P-BBBBB", 2)
    before = await _rows(engine, archived)
    assert all(before.values()), before
    assert await forget_pathway(engine, RETAINED, archived) == 9, "7 rows deleted, 2 blanked (raw, summary event)"
    after = await _rows(engine, archived)
    assert after == {**{t: 0 for t in before}, "pathway_member": 1}, "who the room was for stays, the rest goes"
    assert await _rows(engine, other) == before, "another pathway of the same patient keeps everything"
    pathways = PathwayStore(engine)
    assert (await pathways.pathway(archived)).code == "P-AAAAA", "the pathway's own row stays"
    assert await pathways.patient_by_ins("148057512345643") is not None


async def test_closed_pathways_past_their_retention_are_found(engine):
    pathways = PathwayStore(engine)
    due = await _pathway_with_everything(engine, "P-CCCCC", 3)
    await pathways.update(due, retention_until=1_000)
    later = await _pathway_with_everything(engine, "P-DDDDD", 4)
    await pathways.update(later, retention_until=5_000)
    assert await pathways.past_retention(2_000) == [due]
    await pathways.update(due, status="archived")
    assert await pathways.past_retention(10_000) == [later]


async def test_the_archive_room_of_a_coordinator_is_remembered(engine):
    store = BotStore(engine)
    assert await store.archive_room("@c:hs") is None
    await store.set_archive_room("@c:hs", "!dm:hs")
    assert await store.archive_room("@c:hs") == "!dm:hs"



async def test_the_archive_follows_the_clock_a_closed_pathway_waits_its_retention_then_goes(tmp_path):
    """Time that passes, on the movable clock (no real wait): closed today, kept 730 days, archived on the next
    pass after that and not one before; the closing, the retention date and the archive read the same clock."""
    from bot.commands import build_registry
    from bot.archive import Archiver
    from liaison.clock import MovableClock
    from tests.fakes import COORD, ask, close_services, make_services
    from tests.test_subcommands import World

    clock = MovableClock()
    services = await make_services(tmp_path, clock=clock)
    try:
        registry, room = build_registry(), await World(services).open()
        closed_at = clock.now_ms()
        assert "Parcours clos" in (await ask(services, registry, COORD, room, "!parcours clore fin de suivi")).text
        pathway = await services.pathways.by_room(room)
        assert (pathway.closed_at, pathway.retention_until) == (closed_at, closed_at + 730 * 86_400_000)

        archiver = Archiver(services)
        await clock.advance(729 * 86_400)
        assert await archiver.run_once() == 0, "kept until its retention date"
        assert (await services.pathways.pathway(pathway.id)).status == "closed"
        await clock.advance(86_400 + 1)
        assert await archiver.run_once() == 1
        assert await archiver.run_once() == 0, "archived once"
        assert not services.matrix.room(room).with_state("join") - {services.settings.bot_user_id}, "room emptied"
    finally:
        await close_services(services)


async def test_the_archive_goes_only_to_a_room_of_the_bot_and_its_recipient(tmp_path):
    """The « Archives Liaison » room is made with the bot alone able to invite; one where someone else came in is
    not used again: the next archive goes to a new room (issue 24, item 5)."""
    from bot.archive import Archiver
    from liaison.clock import MovableClock
    from tests.fakes import COORD, OUTSIDER, close_services, make_services
    from tests.test_subcommands import World

    clock = MovableClock()
    services = await make_services(tmp_path, clock=clock)
    try:
        world = World(services)
        first, second = await world.open(), await world.open(team="medecin", line=_second_patient())
        for room in (first, second):
            assert "Parcours clos" in (await world.say(COORD, "!parcours clore fin de suivi", room)).text
        archiver = Archiver(services)
        await clock.advance(731 * 86_400)
        pathway = await services.pathways.by_room(first)
        await archiver.archive(pathway)
        made = [c for c in world.m.created if c["name"] == "Archives Liaison"]
        assert len(made) == 1 and made[0]["power_levels"]["invite"] == 100, "the bot alone invites"
        archives = made[0]["room_id"]
        world.m.accept(archives, COORD)
        world.m.room(archives).membership[OUTSIDER] = "join"   # someone else came in
        await archiver.archive(await services.pathways.by_room(second))
        made = [c for c in world.m.created if c["name"] == "Archives Liaison"]
        assert len(made) == 2, "a room someone else is in is not used again"
        assert [f for f in world.m.files if f[0] == archives and "archive-" in f[1]] != []
        assert not [f for f in world.m.files if f[0] == archives and (pathway.code not in f[1])], \
            "the second archive did not go to the first room"
    finally:
        await close_services(services)


def _second_patient() -> str:
    from policies.ins import nir_key

    nir = "2520619004012"
    return f"!parcours ouvrir {nir}{nir_key(nir):02d} diabete 12/06/1952 F Petit Jeanne"
