"""The document index (DocumentStore) on SQLite and PostgreSQL: record, index with numbers, refuse,
the bridge's prepared uploads, and versions."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date

import pytest

from liaison.stores.documents import DocumentStore, Facts, NewFile, superseded_by, versions
from liaison.stores.pathways import PathwayStore

FILE = {"url": "mxc://hs/abc", "key": {"k": "secret"}, "iv": "iv", "hashes": {"sha256": "h"}, "v": "v2"}
PDF = Facts(doctype="lettre-liaison", mime="application/pdf", size=1234, sha256="ab" * 32, rule="document.allowed",
            type_code="11490-0")



@pytest.fixture
async def pathways(engine) -> list:
    store = PathwayStore(engine)
    patient = await store.add_patient(ins="1800599123456", oid="1.2.250.1.213.1.4.8", birth_name="DURAND",
                                      first_names="Marie", birth_date=date(1980, 5, 1), sex="F", actor="@c:hs")
    return [await store.add_pathway(patient_id=patient.id, type_key=kind, code=code, actor="@c:hs")
            for code, kind in (("P-AAAAA", "diabete"), ("P-BBBBB", "autre"))]


def _file(event_id: str, pathway, title: str = "lettre.pdf", author: str = "@gp:hs", at: int = 1000) -> NewFile:
    return NewFile(event_id=event_id, pathway_id=pathway.id, room_id="!room:hs", source="element", author=author,
                   title=title, file=FILE, declared_mime="application/pdf", created_at=at)


async def test_recorded_file_is_pending_until_indexed_with_the_next_number(engine, pathways):
    docs, p = DocumentStore(engine), pathways[0]
    await docs.record([_file("$a", p), _file("$b", p, "bilan.pdf", at=2000)])
    await docs.record([_file("$a", p)])   # the same sync replayed after a crash
    assert [d.event_id for d in await docs.pending()] == ["$a", "$b"]
    first = await docs.index("$a", PDF)
    assert (first.number, first.state, first.sha256, first.file) == (1, "indexed", PDF.sha256, FILE)
    assert (await docs.index("$a", PDF)).number == 1   # idempotent
    assert await docs.refuse("$b", "document.type_spoofed")
    assert not await docs.refuse("$b", "document.type_spoofed")
    assert await docs.pending() == []
    assert [d.number for d in await docs.of_pathway(p.id)] == [1]
    assert await docs.by_number(p.id, 1) == first and await docs.by_number(p.id, 2) is None
    assert await docs.by_number(pathways[1].id, 1) is None   # numbers belong to their pathway


async def test_numbers_are_per_pathway_and_unique_under_two_writers(engine, pathways):
    docs = DocumentStore(engine)
    await docs.record([_file(f"${i}", pathways[i % 2], f"doc{i}.pdf", at=1000 + i) for i in range(12)])
    await asyncio.gather(*(docs.index(f"${i}", PDF) for i in range(12)))
    for p in pathways:
        assert sorted(d.number for d in await docs.of_pathway(p.id)) == list(range(1, 7))


async def test_prepared_upload_is_found_again_and_posted_once(engine, pathways):
    docs, p = DocumentStore(engine), pathways[0]
    mail = replace(_file(None, p), source="mssante", author="c.lefebvre@chu.mssante.fr")
    prepared = await docs.prepare("mail-1/0", mail)
    again = await docs.prepare("mail-1/0", replace(mail, file={"url": "mxc://hs/other"}))
    assert again.id == prepared.id and again.file == FILE   # the first upload is kept
    assert await docs.pending() == []                        # not the bot's to check
    indexed = await docs.posted("mail-1/0", "$file", PDF)
    assert (indexed.event_id, indexed.number, indexed.source_label) == ("$file", 1, "MSSanté")
    assert (await docs.posted("mail-1/0", "$file", PDF)).number == 1


async def test_a_newer_document_with_same_title_type_and_author_supersedes(engine, pathways):
    docs, p = DocumentStore(engine), pathways[0]
    await docs.record([_file("$v1", p, "CR_consultation.pdf", at=1000), _file("$v2", p, "cr_consultation.PDF", at=2000),
                       _file("$other", p, "CR_consultation.pdf", author="@ide:hs", at=1500),
                       _file("$v3", p, "CR cardiologie.pdf", at=3000)])
    for e in ("$v1", "$v2", "$other", "$v3"):
        await docs.index(e, replace(PDF, doctype="compte-rendu-consultation"))
    listed = versions(await docs.of_pathway(p.id))
    assert [(v.current.event_id, [o.event_id for o in v.older]) for v in listed] == [
        ("$v3", []), ("$v2", ["$v1"]), ("$other", [])]
    all_docs = await docs.of_pathway(p.id)
    v1 = next(d for d in all_docs if d.event_id == "$v1")
    assert superseded_by(all_docs, v1).event_id == "$v2"
    await docs.set_type(v1.id, "courrier", "@gp:hs")   # retyped: its own line now
    assert superseded_by(await docs.of_pathway(p.id), v1) is None


async def test_a_room_is_told_once(engine, pathways):
    docs = DocumentStore(engine)
    assert await docs.first_time(pathways[0].id, "no_antivirus")
    assert not await docs.first_time(pathways[0].id, "no_antivirus")
    assert await docs.first_time(pathways[1].id, "no_antivirus")
