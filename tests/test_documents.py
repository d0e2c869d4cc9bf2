"""J6, the Element side, against a real Synapse, the real bot process and a real clamd: files posted in a
pathway room are downloaded, decrypted, checked and indexed; `!docs` and `!doc` show them."""
from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import tempfile

import pytest
from nio import RoomMessage

from liaison.db import open_database
from liaison.stores.documents import DocumentStore
from tests.support.clamd import EICAR
from tests.test_pathways import INS, OPEN, _joined, _room_of

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + os.urandom(4096) + b"\n%%EOF\n"
EXE = b"MZ\x90\x00\x03" + os.urandom(2048)


@pytest.fixture
def team_with(clinician, bot_process):
    """A structure (coordinator, GP, nurse) and its bot, with the `documents:` config section given."""
    async def make(documents: dict | None = None):
        people = {role: await clinician(role) for role in ("coordination", "medecin", "infirmiere")}
        roster = [
            {"user_id": people["coordination"].user_id, "name": "Claire Morel", "profession": "coordinateur",
             "coordinator": True},
            {"user_id": people["medecin"].user_id, "name": "Dr Paul Martin", "profession": "médecin"},
            {"user_id": people["infirmiere"].user_id, "name": "Sophie Bernard", "profession": "infirmière"},
        ]
        bot = bot_process(staff=[], roster=roster, pathways={"ins_test_mode": True},
                          **({"documents": documents} if documents else {}))
        coord = people["coordination"]
        desk = await coord.create_room([bot.user_id])
        await coord.wait_joined(desk, bot.user_id)

        async def open_pathway(command: str = OPEN) -> str:
            team = ",".join(people[r].user_id for r in ("medecin", "infirmiere"))
            reply, _ = await coord.ask(desk, f"{command} --equipe {team}", timeout=60)
            assert "ouvert" in reply.body, reply.body
            room = _room_of(reply)
            for role in ("medecin", "infirmiere"):
                await _joined(people[role], room)
            await people["medecin"].wait_joined(room, people["infirmiere"].user_id)
            await _ask(people["medecin"], room, "!aide")   # the bot reads the GP: room keys are shared
            await _ask(people["infirmiere"], room, "!aide")
            return room

        return people, bot, open_pathway
    return make


async def _index(bot) -> DocumentStore:
    return DocumentStore(await open_database(bot.database_url))


async def _notice_about(client, room: str, event_id: str, timeout: float = 60.0) -> RoomMessage:
    return await client.wait_reply(room, event_id, timeout)


async def _ask(client, room, text, timeout=30.0):
    reply, _ = await client.ask(room, text, timeout=timeout, attempts=3)
    return reply


async def test_a_file_posted_in_element_is_indexed_with_its_hash_and_versions(team_with):
    people, bot, open_pathway = await team_with()
    gp, nurse = people["medecin"], people["infirmiere"]
    room = await open_pathway()

    first = await gp.send_file(room, PDF, "CR_consultation.pdf", "application/pdf")
    notice = await _notice_about(nurse, room, first)
    assert "Document n° 1 indexé : Compte rendu de consultation" in notice.body, notice.body
    index = await _index(bot)
    doc = await index.by_number((await index.by_event(first)).pathway_id, 1)
    assert doc.sha256 == hashlib.sha256(PDF).hexdigest() and doc.size == len(PDF)
    assert (doc.mime, doc.source, doc.author, doc.doctype) == ("application/pdf", "element", gp.user_id,
                                                               "compte-rendu-consultation")
    assert doc.file["url"].startswith("mxc://") and "key" in doc.file, "what is needed to decrypt again"

    newer = PDF.replace(b"Catalog", b"Catalog /Version 2")
    second = await gp.send_file(room, newer, "CR_consultation.pdf", "application/pdf")
    assert "Document n° 2 indexé" in (await _notice_about(nurse, room, second)).body
    photo = await nurse.send_file(room, b"\x89PNG\r\n\x1a\n" + os.urandom(512), "plaie.png", "image/png",
                                  msgtype="m.image")
    assert "Document n° 3 indexé : Photo" in (await _notice_about(gp, room, photo)).body

    listing = await _ask(nurse, room, "!docs")
    assert "Documents du parcours" in listing.body and "(2)" in listing.body, listing.body
    assert "n° 2 · CR_consultation.pdf · Dr Paul Martin" in listing.body
    assert "2 (précédentes : n° 1)" in listing.body and "Photo" in listing.body
    html = listing.source["content"]["formatted_body"]
    assert "<table>" not in html and "<li><b>n° 2</b> · CR_consultation.pdf<br>" in html   # a list, at any width
    assert "versions : 2 (précédentes : n° 1)" in html
    assert listing.body.index("Photo") < listing.body.index("Compte rendu de consultation"), "newest first"
    assert "Aucun antivirus" in listing.body, "no clamd configured: said once"
    assert "Aucun antivirus" not in (await _ask(nurse, room, "!documents")).body

    old = await _ask(gp, room, "!doc 1")
    assert "ancienne version, remplacée par le n° 2" in old.body, old.body
    current = await _ask(gp, room, "!document 2")
    assert hashlib.sha256(newer).hexdigest() in current.body and f"matrix.to/#/{room}/{second}" in current.body
    assert "version la plus récente (2 versions" in current.body and "via Element" in current.body

    retyped = await _ask(gp, room, "!doc type 3 plaie")
    assert "Type inconnu « plaie »" in retyped.body and "Photo (photo)" in retyped.body
    retyped = await _ask(gp, room, "!doc type 1 Résultats de biologie")
    assert "type « Résultat de biologie »" in retyped.body, retyped.body
    assert "version unique" in (await _ask(gp, room, "!doc 1")).body, "retyped: a line of its own"
    assert "Aucun document n° 9 dans ce parcours" in (await _ask(gp, room, "!doc 9")).body

    other = await open_pathway(OPEN.replace(INS, _other_ins()).replace("Durand Marcel", "Petit Louis"))
    assert "Aucun document n° 1 dans ce parcours" in (await _ask(gp, other, "!doc 1")).body, \
        "a document of another patient's room is not reachable from here"


def _other_ins() -> str:
    from policies.ins import nir_key
    nir = "1480575123789"   # another man born in May 1948
    return f"{nir}{nir_key(nir):02d}"


async def test_bad_files_are_refused_with_the_reason_and_nothing_is_indexed(team_with, clamd_daemon):
    people, bot, open_pathway = await team_with({"clamd_socket": clamd_daemon.socket_path})
    gp, nurse = people["medecin"], people["infirmiere"]
    room = await open_pathway()

    spoofed = await gp.send_file(room, EXE, "ordonnance.pdf", "application/pdf")
    said = await _notice_about(nurse, room, spoofed)
    assert "⛔ Fichier « ordonnance.pdf » non indexé" in said.body
    assert "se présente comme un PDF mais contient un programme exécutable" in said.body, said.body

    virus = await gp.send_file(room, EICAR, "resultats.txt", "text/plain")
    said = await _notice_about(nurse, room, virus)
    assert "L'antivirus a détecté un virus « Liaison.Test.EICAR" in said.body, said.body
    assert "retiré du salon" in said.body
    redacted = await gp.client.room_get_event(room, virus)
    assert "body" not in redacted.event.source.get("content", {}), "the infected file's event is redacted"

    huge = await gp.send_file(room, PDF, "scanner.pdf", "application/pdf", declared_size=300 * 1024 * 1024)
    assert "dépasse la taille maximale (25 Mio)" in (await _notice_about(nurse, room, huge)).body

    archive = await gp.send_file(room, b"PK\x03\x04" + os.urandom(256), "dossier.zip", "application/zip")
    assert "archive ZIP" in (await _notice_about(nurse, room, archive)).body

    clean = await gp.send_file(room, PDF, "lettre de sortie.pdf", "application/pdf")
    said = await _notice_about(nurse, room, clean)
    assert "Document n° 1 indexé : Compte rendu d'hospitalisation / lettre de liaison" in said.body, said.body

    index = await _index(bot)
    pathway_id = (await index.by_event(clean)).pathway_id
    assert [d.event_id for d in await index.of_pathway(pathway_id)] == [clean], "only the clean file is indexed"
    refused = {e: (await index.by_event(e)).rule for e in (spoofed, virus, huge, archive)}
    assert refused == {spoofed: "document.type_spoofed", virus: "document.infected", huge: "document.too_big",
                       archive: "document.type_not_allowed"}
    listing = await _ask(nurse, room, "!docs")
    assert "Aucun antivirus" not in listing.body and "lettre de sortie.pdf" in listing.body
    log = bot.current_log()
    for secret in ("ordonnance.pdf", "resultats.txt", "lettre de sortie", "EICAR"):
        assert secret not in log, f"{secret!r} leaked into the bot's log"


async def test_a_file_posted_while_the_bot_is_down_is_indexed_when_it_is_back(team_with):
    people, bot, open_pathway = await team_with()
    gp, nurse = people["medecin"], people["infirmiere"]
    room = await open_pathway()
    bot.stop()
    posted = await gp.send_file(room, PDF, "bilan sanguin.pdf", "application/pdf")
    bot.start()
    said = await _notice_about(nurse, room, posted, timeout=90)
    assert "Document n° 1 indexé : Résultat de biologie" in said.body, said.body


async def test_a_crash_while_a_file_is_checked_loses_nothing_and_tells_once(team_with, clamd_daemon, tmp_path):
    """The antivirus hangs (a socket that accepts and never answers) while the bot checks a file; the bot is
    killed then; restarted with a working clamd, it checks the file again: indexed once, told once."""
    hanging = tempfile.mkdtemp(prefix="hang-", dir="/tmp") + "/clamd.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(hanging)
    listener.listen(8)
    try:
        people, bot, open_pathway = await team_with({"clamd_socket": hanging, "clamd_timeout_seconds": 120})
        gp, nurse = people["medecin"], people["infirmiere"]
        room = await open_pathway()
        posted = await gp.send_file(room, PDF, "CR_consultation.pdf", "application/pdf")
        index = await _index(bot)
        for _ in range(400):
            row = await index.by_event(posted)
            if row and row.state == "pending":
                break
            await asyncio.sleep(0.05)
        assert row and row.state == "pending", "recorded before the check"
        await asyncio.sleep(1.0)   # the bot is now waiting on the antivirus
        bot.stop(signal.SIGKILL)
        bot.extra["documents"] = {"clamd_socket": clamd_daemon.socket_path}
        bot.start()
        said = await _notice_about(nurse, room, posted, timeout=90)
        assert "Document n° 1 indexé" in said.body, said.body
        await asyncio.sleep(2)
        assert len(nurse.replies_to(room, posted)) == 1, "told once"
        doc = await index.by_event(posted)
        assert (doc.state, doc.number, doc.sha256) == ("indexed", 1, hashlib.sha256(PDF).hexdigest())
    finally:
        listener.close()
