"""Element's own crypto (matrix-js-sdk + Rust crypto WASM) talks to the bot in an encrypted room."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from liaison.db import open_database
from liaison.stores.documents import DocumentStore
from tests.test_pathways import OPEN, _room_of

ELEMENT = Path(__file__).parent / "element"


@pytest.fixture(scope="session")
def element_client():
    if not (ELEMENT / "node_modules" / "matrix-js-sdk").exists():
        if not shutil.which("npm"):
            pytest.fail("npm is needed for the Element crypto test (make test installs it)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ELEMENT, check=True)
    return ELEMENT / "send_command.mjs"


async def _run(script: Path, *args: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        "node", str(script), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ))
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_element_crypto_sends_aide_and_decrypts_the_reply(synapse, new_user, bot_process, clinician,
                                                                element_client):
    coordinator = await clinician("coordination")
    element_user, element_password = new_user("medecin.element")
    bot = bot_process(staff=[coordinator.user_id])
    room = await coordinator.create_room([bot.user_id, element_user])
    await coordinator.wait_joined(room, bot.user_id)
    result = await _run(element_client, "--homeserver", synapse.url, "--user", element_user,
                        f"--password={element_password}", "--room", room, "--command", "!aide",
                        "--expect-sender", bot.user_id, "--timeout", "60", "--resend-after", "0")
    assert result["sent_encrypted"] and result["encrypted"], "both ways end-to-end encrypted"
    assert result["sender"] == bot.user_id
    assert result["in_reply_to"] == result["sent_event_id"]
    assert "Commandes de Liaison" in result["body"]
    assert "<code>!aide" in result["formatted_body"]
    assert result["attempts"] == 1, "the bot must read Element's first message"


async def test_files_encrypted_by_element_are_decrypted_checked_and_indexed(synapse, new_user, bot_process,
                                                                            clinician, element_client, tmp_path):
    """Attachments encrypted as Element Web does it (WebCrypto AES-256-CTR, encrypted attachment v2) in a
    pathway room: the bot downloads, decrypts, checks and indexes them (or refuses them, saying why)."""
    coordinator = await clinician("coordination")
    element_user, element_password = new_user("medecin.element")
    roster = [
        {"user_id": coordinator.user_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True},
        {"user_id": element_user, "name": "Dr Paul Martin", "profession": "médecin"},
    ]
    bot = bot_process(staff=[], roster=roster, pathways={"ins_test_mode": True})
    desk = await coordinator.create_room([bot.user_id])
    await coordinator.wait_joined(desk, bot.user_id)
    opened, _ = await coordinator.ask(desk, f"{OPEN} --equipe {element_user}", timeout=60)
    assert "ouvert" in opened.body, opened.body
    room = _room_of(opened)   # the Element user is invited: the script's join accepts the invitation

    async def post(data: bytes, name: str, mime: str, *flags: str) -> dict:
        path = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}"
        path.write_bytes(data)
        result = await _run(element_client, "--homeserver", synapse.url, "--user", element_user,
                            f"--password={element_password}", "--room", room, "--expect-sender", bot.user_id,
                            "--file", str(path), "--filename", name, "--mimetype", mime, *flags,
                            "--timeout", "90", "--resend-after", "10")
        assert "Commandes de Liaison" in result["command_reply_body"], "the bot reads this device"
        assert result["sent_encrypted"] and result["encrypted"], "both ways end-to-end encrypted"
        assert result["in_reply_to"] == result["sent_event_id"] and result["sender"] == bot.user_id
        assert result["sha256"] == hashlib.sha256(data).hexdigest()
        file = result["file"]
        assert file["v"] == "v2" and file["url"].startswith("mxc://")
        assert base64.b64decode(file["iv"] + "==")[8:] == bytes(8), "Element's IV: a 64-bit counter from 0"
        assert file["key"]["alg"] == "A256CTR" and file["key"]["key_ops"] == ["encrypt", "decrypt"]
        return result

    index = DocumentStore(await open_database(bot.database_url))

    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + os.urandom(4096) + b"\n%%EOF\n"
    posted = await post(pdf, "CR_consultation.pdf", "application/pdf")
    assert "Document n° 1 indexé : Compte rendu de consultation" in posted["body"], posted["body"]
    doc = await index.by_event(posted["sent_event_id"])
    assert (doc.state, doc.sha256, doc.size) == ("indexed", hashlib.sha256(pdf).hexdigest(), len(pdf))
    assert (doc.mime, doc.source, doc.author, doc.title) == ("application/pdf", "element", element_user,
                                                             "CR_consultation.pdf")
    assert doc.file == posted["file"], "what is needed to decrypt it again, as Element sent it"

    # Element Web itself puts the name in `body` only (no `filename`): that form too.
    exe = b"MZ\x90\x00\x03" + os.urandom(2048)
    refused = await post(exe, "ordonnance.pdf", "application/pdf", "--omit-filename")
    assert "⛔ Fichier « ordonnance.pdf » non indexé" in refused["body"], refused["body"]
    assert "se présente comme un PDF mais contient un programme exécutable" in refused["body"]
    row = await index.by_event(refused["sent_event_id"])
    assert row.rule == "document.type_spoofed" and row.state != "indexed"
    assert [d.event_id for d in await index.of_pathway(doc.pathway_id)] == [posted["sent_event_id"]]
