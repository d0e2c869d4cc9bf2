"""Patients, pathways, roster and trace in the database, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.exc import IntegrityError

from liaison.stores.pathways import PathwayStore
from liaison.config import RosterEntry
from liaison.stores.roster import Roster
from policies.professions import find_profession



async def test_one_pathway_of_a_type_in_progress_per_patient(engine):
    store = PathwayStore(engine)
    patient = await store.add_patient(ins="148057512345643", oid="1.2.250.1.213.1.4.10", birth_name="Durand",
                                      first_names="Marcel", birth_date=date(1948, 5, 12), sex="M", actor="@c:hs")
    assert (await store.patient_by_ins("148057512345643")).birth_date == date(1948, 5, 12)
    first = await store.add_pathway(patient_id=patient.id, type_key="diabete", code="P-AAAAA", actor="@c:hs")
    with pytest.raises(IntegrityError):
        await store.add_pathway(patient_id=patient.id, type_key="diabete", code="P-BBBBB", actor="@c:hs")
    await store.update(first.id, status="closed")
    second = await store.add_pathway(patient_id=patient.id, type_key="diabete", code="P-CCCCC", actor="@c:hs")
    assert (await store.in_progress(patient.id, "diabete")).id == second.id
    with pytest.raises(ValueError):
        await store.update(first.id, patient_id="elsewhere")


async def test_summary_fields_are_versioned(engine):
    store = PathwayStore(engine)
    patient = await store.add_patient(ins="248057512345612", oid="1.2.250.1.213.1.4.10", birth_name="Petit",
                                      first_names="Anne", birth_date=date(1948, 5, 1), sex="F", actor="@c:hs")
    pw = await store.add_pathway(patient_id=patient.id, type_key="autre", code="P-DDDDD", actor="@c:hs")
    assert await store.set_summary(pw.id, "traitements", "furosémide", "@gp:hs") == 1
    assert await store.set_summary(pw.id, "traitements", "furosémide 40 mg", "@gp:hs") == 2
    assert await store.summary(pw.id) == {"traitements": ("furosémide 40 mg", 2)}


async def test_roster_changes_are_traced(engine):
    roster = Roster(engine)
    nurse = find_profession("infirmière")
    assert await roster.upsert("@n:hs", "Sophie", nurse, actor="configuration")
    assert not await roster.upsert("@n:hs", "Sophie", nurse, actor="configuration"), "no change, no trace"
    assert await roster.upsert("@n:hs", "Sophie", nurse, actor="@c:hs", coordinator=True)
    assert (await roster.get("@n:hs")).coordinator
    assert await roster.remove("@n:hs", actor="@c:hs")
    assert await roster.get("@n:hs") is None
    actions = [(c["action"], c["actor"]) for c in await roster.changes()]
    assert sorted(actions) == sorted([("ajout", "configuration"), ("modification", "@c:hs"), ("retrait", "@c:hs")])


async def test_the_roster_keeps_each_members_sex_and_names_the_profession_in_their_gender(engine):
    roster = Roster(engine)
    await roster.load([RosterEntry("@n:hs", "Sophie Bernard", "infirmière"),
                       RosterEntry("@c:hs", "Claire Morel", "coordinateur", sex="F", coordinator=True),
                       RosterEntry("@g:hs", "Paul Martin", "médecin", sex="M"),
                       RosterEntry("@k:hs", "Camille Roux", "kiné")])
    nurse, coordinator = await roster.get("@n:hs"), await roster.get("@c:hs")
    assert (nurse.sex, nurse.label) == ("F", "Sophie Bernard (Infirmière)")
    assert (coordinator.sex, coordinator.label) == ("F", "Claire Morel (Coordinatrice de parcours)")
    assert (await roster.get("@g:hs")).label == "Paul Martin (Médecin)"
    unknown = await roster.get("@k:hs")
    assert (unknown.sex, unknown.label) == ("", "Camille Roux (Masseur-kinésithérapeute)"), "unknown: today's label"
    kine = find_profession("kiné")
    assert await roster.upsert("@k:hs", "Camille Roux", kine, actor="@c:hs", sex="F"), "a sex learnt is a change"
    assert (await roster.get("@k:hs")).label == "Camille Roux (Masseuse-kinésithérapeute)"
    assert not await roster.upsert("@k:hs", "Camille Roux", kine, actor="@c:hs", sex="F")
    assert (await Roster(engine).get("@k:hs")).sex == "F", "read back from the database, not a cache"


async def test_concurrent_read_then_write_transactions_wait_instead_of_failing(engine):
    """SQLite: a transaction that reads then writes must wait for another writer, not fail."""
    import asyncio

    roster, nurse = Roster(engine), find_profession("infirmier")
    await asyncio.gather(*(roster.upsert(f"@n{i}:hs", f"N{i}", nurse, actor="@c:hs") for i in range(30)))
    assert len(await roster.members()) == 30


async def test_consents_and_objections_become_facts(engine):
    from liaison.stores.consents import ConsentStore

    store, consents = PathwayStore(engine), ConsentStore(engine)
    patient = await store.add_patient(ins="148057512345643", oid="1.2.250.1.213.1.4.10", birth_name="Durand",
                                      first_names="Marcel", birth_date=date(1948, 5, 12), sex="M", actor="@c:hs")
    await consents.add_consent(patient.id, scope_kind="person", scope="@k:ext", means="écrit", categories=["soins"],
                               notice="informé", actor="@c:hs", expires_at=None)
    assert len(await consents.withdraw_consents(patient.id, "person", "@k:ext", "@c:hs")) == 1
    assert await consents.add_objection(patient.id, scope_kind="profession", scope="infirmier", actor="@c:hs")
    assert await consents.add_objection(patient.id, scope_kind="profession", scope="infirmier", actor="@c:hs") is None
    (consent,), (objection,) = await consents.facts(patient.id)
    assert consent.withdrawn_at is not None and consent.categories == frozenset({"soins"}) and consent.notice_given
    assert objection.scope == "infirmier" and objection.lifted_at is None
    assert len(await consents.lift_objections(patient.id, "profession", "infirmier", "@c:hs")) == 1
