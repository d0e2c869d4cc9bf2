"""Element's own crypto (matrix-js-sdk + Rust crypto WASM) talks to the bot in an encrypted room."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
                        "--password", element_password, "--room", room, "--command", "!aide",
                        "--expect-sender", bot.user_id, "--timeout", "60", "--resend-after", "0")
    assert result["sent_encrypted"] and result["encrypted"], "both ways end-to-end encrypted"
    assert result["sender"] == bot.user_id
    assert result["in_reply_to"] == result["sent_event_id"]
    assert "Commandes de Liaison" in result["body"]
    assert "<code>!aide" in result["formatted_body"]
    assert result["attempts"] == 1, "the bot must read Element's first message"
