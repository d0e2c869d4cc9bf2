"""The facts behind sharing decisions cannot be rewritten unseen (issue 24, item 7): a consent, an objection or a
member of the roster changed in the database is named by `liaison trace verify`, and the decision point reads it
cautiously and refuses (facts.tampered), on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
import yaml
from sqlalchemy import text
from structlog.testing import capture_logs

from liaison.bootstrap import Shared, shared_on
from liaison.clock import MovableClock
from liaison.db import bundled_migrations, create_engine, migrate
from liaison.enforcement import decide_at
from liaison.logs import find_sensitive
from liaison.stores.facts import altered_everywhere
from liaison.stores.pathways import Pathway
from policies.professions import find_profession
from policies.sharing import Knobs

START = datetime(2027, 3, 1, 9, tzinfo=timezone.utc)
COORD, NURSE, SECRETARY, OUTSIDER = "@coord:hs", "@nurse:hs", "@sec:hs", "@kine:ailleurs"
INS = "148057512345643"
BASE = {"homeserver": {"url": "http://127.0.0.1:1", "server_name": "hs"},
        "bot": {"user_id": "@bot:hs", "password": "a-real-password", "store_pickle_key": "s" * 32}}


class Desk:
    """One patient and her pathway, a coordinator, a nurse of her usual team, a secretary; the stores on a real
    database, and the decision point."""

    def __init__(self, shared: Shared, clock: MovableClock, pathway: Pathway) -> None:
        self.shared, self.clock, self.pathway = shared, clock, pathway

    async def invite(self, who: str):
        """The decision to invite `who` into the pathway's room, as the coordinator (traced, as every decision)."""
        decided = await decide_at(self.shared.sharing, "room.invite", pathway=self.pathway, recipient=who, actor=COORD)
        return decided.decision

    async def sql(self, statement: str, **params) -> None:
        async with self.shared.engine.begin() as conn:
            await conn.execute(text(statement), params)

    async def altered(self) -> list[tuple[str, str, str]]:
        return [(a.table, a.id, a.kind) for a in await altered_everywhere(self.shared.engine)]


@pytest.fixture
async def desk(engine):
    clock = MovableClock(START)
    shared = shared_on(engine, Knobs(), bridge=False, clock=clock)
    roster = shared.roster
    await roster.upsert(COORD, "Claire Morel", find_profession("coordinatrice"), actor="configuration", coordinator=True)
    await roster.upsert(NURSE, "Sophie Bernard", find_profession("infirmière"), actor="configuration")
    await roster.upsert(SECRETARY, "Léa Roux", find_profession("secrétaire médicale"), actor="configuration")
    patient = await shared.pathways.add_patient(ins=INS, oid="1.2.250.1.213.1.4.10", birth_name="Durand",
                                                first_names="Marcel", birth_date=date(1948, 5, 12), sex="M",
                                                actor=COORD)
    pathway = await shared.pathways.add_pathway(patient_id=patient.id, type_key="diabete", code="P-AAAAA",
                                                actor=COORD)
    await shared.pathways.set_usual_team(patient.id, [NURSE], actor=COORD)
    return Desk(shared, clock, pathway)


@pytest.fixture
def verify(db_url, tmp_path):
    """`liaison trace verify` on this database: (exit code, what it printed)."""
    cfg = tmp_path / "liaison.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "database": {"url": db_url}}))

    async def run() -> tuple[int, str]:
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "liaison.cli", "trace", "verify",
                                                        "-c", str(cfg)], capture_output=True, text=True)
        return done.returncode, done.stdout + done.stderr
    return run


def _alerts(logs: list[dict]) -> list[tuple[str, str]]:
    """The facts.tampered alerts logged: (table, row); and never a patient's data in any of them."""
    found = [e for e in logs if e["event"] == "facts.tampered"]
    for e in found:
        assert not find_sensitive(str(e)) and "Durand" not in str(e) and INS not in str(e), e
    return [(e["table"], e["row"]) for e in found]


async def test_an_objection_lifted_in_the_database_still_counts_and_verify_names_it(desk, verify):
    will = desk.shared.consents
    oid_ref = await will.add_objection(desk.pathway.patient_id, scope_kind="profession", scope="infirmier",
                                       actor=COORD, pathway_id=desk.pathway.id)
    assert oid_ref is not None and (await desk.invite(NURSE)).rule == "objection.profession"
    code, out = await verify()
    assert code == 0 and "faits vérifiés" in out, out
    async with desk.shared.engine.connect() as conn:
        oid = (await conn.execute(text("SELECT id FROM objection"))).scalar()

    await desk.sql("UPDATE objection SET lifted_at = :t, lifted_by = :c", t=desk.clock.now_ms(), c=COORD)
    code, out = await verify()
    assert code == 1 and f"fait ALTÉRÉ : table objection, ligne {oid} : modifiée hors de Liaison" in out, out
    assert "trace intègre" in out, "the trace itself holds: the row was changed, not the trace"
    with capture_logs() as logs:
        decision = await desk.invite(NURSE)
        (objection,) = (await will.facts(desk.pathway.patient_id))[1]
    assert (decision.allowed, decision.rule) == (False, "facts.tampered"), decision
    assert "oppositions" in decision.reason and "liaison trace verify" in decision.reason
    assert objection.lifted_at is None, "read cautiously: still in force"
    assert ("objection", oid) in _alerts(logs)

    # Lifted through Liaison instead, it is lifted: the refusal above was the tampering's, nothing else.
    await desk.sql("UPDATE objection SET lifted_at = NULL, lifted_by = NULL")
    assert await desk.altered() == []
    assert await will.lift_objections(desk.pathway.patient_id, "profession", "infirmier", COORD)
    assert (await desk.invite(NURSE)).rule == "team.health"
    assert (await verify())[0] == 0


async def test_an_objection_deleted_in_the_database_is_missed_and_refuses(desk, verify):
    await desk.shared.consents.add_objection(desk.pathway.patient_id, scope_kind="person", scope=NURSE, actor=COORD)
    await desk.sql("DELETE FROM objection")
    assert [(t, how) for t, _, how in await desk.altered()] == [("objection", "deleted")]
    assert (await desk.invite(NURSE)).rule == "facts.tampered", "gone from the table, not from the trace"
    code, out = await verify()
    assert code == 1 and "table objection" in out and "supprimée hors de Liaison" in out, out


async def test_a_consent_whose_expiry_is_pushed_back_in_the_database_counts_as_absent(desk, verify):
    consents, tomorrow = desk.shared.consents, desk.clock.now_ms() + 86_400_000
    await consents.add_consent(desk.pathway.patient_id, scope_kind="person", scope=OUTSIDER, means="écrit",
                               categories=[], notice="informé", actor=COORD, expires_at=tomorrow,
                               pathway_id=desk.pathway.id)
    assert (await desk.invite(OUTSIDER)).rule == "outside.consent"
    await desk.clock.advance(2 * 86400)
    assert (await desk.invite(OUTSIDER)).rule == "outside.no_consent", "ended"
    async with desk.shared.engine.connect() as conn:
        cid = (await conn.execute(text("SELECT id FROM consent"))).scalar()

    await desk.sql("UPDATE consent SET expires_at = :later", later=desk.clock.now_ms() + 365 * 86_400_000)
    code, out = await verify()
    assert code == 1 and f"table consent, ligne {cid} : modifiée hors de Liaison" in out, out
    with capture_logs() as logs:
        decision = await desk.invite(OUTSIDER)
        consents_read, _ = await consents.facts(desk.pathway.patient_id)
    assert (decision.allowed, decision.rule) == (False, "facts.tampered") and "consentements" in decision.reason
    assert consents_read == (), "read cautiously: no consent at all"
    assert ("consent", cid) in _alerts(logs)


async def test_a_profession_changed_in_the_roster_reads_as_no_member(desk, verify):
    assert (await desk.invite(SECRETARY)).rule == "non_health.role_not_allowed"
    await desk.sql("UPDATE roster_member SET profession = 'medecin' WHERE user_id = :u", u=SECRETARY)
    await desk.sql("INSERT INTO patient_team (patient_id, user_id) VALUES (:p, :u)", p=desk.pathway.patient_id,
                   u=SECRETARY)   # and into the patient's usual team: a doctor of her team, were it believed
    code, out = await verify()
    assert code == 1 and f"table roster_member, ligne {SECRETARY} : modifiée hors de Liaison" in out, out
    assert f"table patient_team, ligne {desk.pathway.patient_id} {SECRETARY} : absente de la trace" in out, out
    with capture_logs() as logs:
        decision = await desk.invite(SECRETARY)
        members, _ = await desk.shared.roster.checked({SECRETARY})
    assert (decision.allowed, decision.rule) == (False, "facts.tampered"), decision
    assert "équipe de la structure" in decision.reason and "équipe habituelle du patient" in decision.reason
    assert members == {}, "read cautiously: unknown, no profession"
    assert ("roster_member", SECRETARY) in _alerts(logs)
    assert SECRETARY not in [m.user_id for m in await type(desk.shared.roster)(desk.shared.engine).members()], \
        "nor a member for the commands' permissions"
    assert (await desk.invite(NURSE)).rule == "facts.tampered", "the patient's usual team is in question"
    await desk.sql("DELETE FROM patient_team WHERE user_id = :u", u=SECRETARY)
    assert (await desk.invite(NURSE)).rule == "team.health", "the other members' rows are not in question"
    assert (await desk.invite(SECRETARY)).rule == "facts.tampered"


async def test_an_entry_rewritten_to_vouch_for_a_changed_row_vouches_for_nothing(desk, verify):
    """Changing the row, then the digest its entry carries, breaks the chain: the entry no longer vouches."""
    await desk.shared.consents.add_objection(desk.pathway.patient_id, scope_kind="person", scope=NURSE, actor=COORD)
    await desk.sql("UPDATE objection SET lifted_at = 1")
    from liaison.stores.facts import TABLES

    async with desk.shared.engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM objection"))).first()
    await desk.sql("UPDATE trace_entry SET fact_digest = :d WHERE fact_kind = 'objection'",
                   d=TABLES["objection"].digest(row._mapping))
    assert (await desk.invite(NURSE)).rule == "facts.tampered"
    code, out = await verify()
    assert code == 1 and "trace ALTÉRÉE" in out and "l'entrée de la trace qui l'enregistre est altérée" in out, out


async def test_facts_written_before_the_upgrade_are_recorded_once_by_it(db_url):
    """A database of version 15 with consents, objections, a roster: the upgrade vouches for them as they are;
    a row added afterwards behind Liaison's back is not."""
    engine = create_engine(db_url)
    try:
        migrations = bundled_migrations()
        await migrate(engine, [m for m in migrations if m.version <= 15])
        async with engine.begin() as conn:
            for statement in (
                "INSERT INTO roster_member (user_id, display_name, profession, structure, is_coordinator, active, "
                "updated_at) VALUES ('@c:hs', 'Claire', 'coordinateur', '', 1, 1, 1)",
                "INSERT INTO patient (id, ins, ins_oid, birth_name, first_names, birth_date, sex, created_by, "
                f"created_at) VALUES ('p1', '{INS}', '1.2.250.1.213.1.4.10', 'Durand', 'Marcel', '1948-05-12', 'M', "
                "'@c:hs', 1)",
                "INSERT INTO objection (id, patient_id, scope_kind, scope, recorded_by, recorded_at) "
                "VALUES ('o1', 'p1', 'profession', 'infirmier', '@c:hs', 1)",
                "INSERT INTO consent (id, patient_id, scope_kind, scope, means, notice, recorded_by, recorded_at) "
                "VALUES ('c1', 'p1', 'person', '@k:ailleurs', 'écrit', 'informé', '@c:hs', 1)",
                "INSERT INTO patient_team (patient_id, user_id) VALUES ('p1', '@c:hs')",
                "INSERT INTO external_contact (address, profession, updated_by, updated_at) "
                "VALUES ('dr@chu.mssante.fr', 'cardiologue', '@c:hs', 1)",
            ):
                await conn.execute(text(statement))
        await migrate(engine)
        assert await altered_everywhere(engine) == []
        async with engine.connect() as conn:
            recorded = (await conn.execute(text("SELECT fact_kind, fact_id FROM trace_entry "
                                                "WHERE rule = 'facts.recorded' ORDER BY fact_kind"))).all()
        assert [tuple(r) for r in recorded] == [("consent", "c1"), ("external_contact", "dr@chu.mssante.fr"),
                                                ("objection", "o1"), ("patient_team", "p1 @c:hs"),
                                                ("roster_member", "@c:hs")]
        await migrate(engine)   # nothing more: the upgrade ran once
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO consent (id, patient_id, scope_kind, scope, means, notice, "
                                    "recorded_by, recorded_at) VALUES ('c2', 'p1', 'profession', 'kine', 'écrit', "
                                    "'informé', '@c:hs', 2)"))
        assert [(a.table, a.id, a.kind) for a in await altered_everywhere(engine)] == [
            ("consent", "c2", "unrecorded")]
    finally:
        await engine.dispose()


async def test_every_change_of_a_fact_is_one_entry_in_the_same_transaction(desk, monkeypatch):
    """Each change of a fact is one entry vouching for its row; a change whose entry cannot be written leaves no
    row either."""
    trace = desk.shared.trace
    before = len(await trace.entries())
    await desk.shared.contacts.upsert("dr@chu.mssante.fr", name="", profession=find_profession("médecin"),
                                      structure="CHU", actor=COORD)
    await desk.shared.contacts.remove("dr@chu.mssante.fr", actor=COORD)
    await desk.shared.roster.remove(SECRETARY, actor=COORD)
    entries = (await trace.entries())[before:]
    assert [(e.rule, e.fact_kind, e.fact_id) for e in entries] == [
        ("contact.recorded", "external_contact", "dr@chu.mssante.fr"),
        ("contact.removed", "external_contact", "dr@chu.mssante.fr"),
        ("roster.removed", "roster_member", SECRETARY)]
    assert (await trace.verify()).ok and await desk.altered() == []

    async def no_trace(*_args, **_kw):
        raise RuntimeError("trace unavailable")
    monkeypatch.setattr("liaison.stores.facts.append_on", no_trace)
    with pytest.raises(RuntimeError):
        await desk.shared.consents.add_objection(desk.pathway.patient_id, scope_kind="person", scope=NURSE,
                                                 actor=COORD)
    async with desk.shared.engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM objection"))).scalar() == 0, "no entry, no row"


async def test_a_correspondent_counts_only_as_the_trace_recorded_it_and_its_archive_is_no_tampering(desk, verify):
    from liaison.stores.mail import MailStore
    from liaison.stores.retention import forget_pathway, shared

    mail, pathway = MailStore(desk.shared.engine, desk.clock), desk.pathway
    await mail.add_correspondent(pathway.id, "Dr@CHU.mssante.fr", "subaddress")   # a pathway code proves nothing
    await desk.sql("UPDATE mss_correspondent SET basis = 'ins'")                  # … made to look like an INS
    assert await mail.checked_correspondent(pathway.id, "dr@chu.mssante.fr") == (False, [
        next(iter(await altered_everywhere(desk.shared.engine)))])
    await mail.add_correspondent(pathway.id, "dr@chu.mssante.fr", "ins")   # then truly written with the INS
    assert await mail.is_correspondent(pathway.id, "dr@chu.mssante.fr") and await desk.altered() == []
    await desk.shared.pathways.update(pathway.id, status="archived")
    await forget_pathway(desk.shared.engine, shared(), pathway.id)   # the archive forgets its correspondents
    code, out = await verify()
    assert code == 0 and "faits vérifiés" in out, out
