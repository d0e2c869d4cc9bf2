"""No log line carries identity: after several journeys (a letter in with its documents, a reply out, a file
posted in the room, two mails to quarantine), the bot's and the bridge's logs hold no patient name, INS, mail
address, subject or file name, and the scrubber's detectors find nothing in them. Run outside `liaison up`,
the services keep what they write to their owner (their own umask)."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from nio import RoomMessage, RoomMessageText

from liaison.logs import find_sensitive
from policies.ins import nir_key
from tests.support.mss import INS, NIR, PDF, box, is_puppet, letter, open_structure, send_mail, wait_mail, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
STRANGER = "inconnu@messagerie-ordinaire.test"
OTHER_NIR = "2690299123456"
# What the journeys below put in mails, rooms and files: none of it may reach a log.
SEEDED = ("Durand", "Marcel", INS, NIR, f"{OTHER_NIR}{nir_key(OTHER_NIR):02d}", "12/05/1948", "1948-05-12",
          CARDIO, "lefebvre", STRANGER, "Camille", "Sortie de M.", "Compte rendu", "Bilan sanguin", "IHE_XDM",
          "je le vois jeudi", "Ordonnance")


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


@pytest.fixture
def synapse_log(synapse):
    """What Synapse logs from here on (its log is the whole session's)."""
    path = synapse.log_dir / "synapse.log"
    start = path.stat().st_size if path.exists() else 0
    def read() -> list[str]:
        with path.open("rb") as fh:
            fh.seek(start)
            return fh.read().decode(errors="replace").splitlines()
    return read


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _journeys(s) -> None:
    cardio, stranger = box(s.mail, CARDIO), box(s.mail, STRANGER)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    msg = letter(cardio, to, subject="Sortie de M. Durand Marcel", xdm=xdm_letter(),
                 text=f"Bonjour, M. Marcel Durand (né le 12/05/1948, INS {INS}) sort jeudi.")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Compte rendu Durand.pdf")
    letter_id = await send_mail(s.mail, cardio, msg, to)
    text = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                               and is_puppet(e.sender) and "Sortie" in e.body, 60)
    await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Merci, je le vois jeudi.",
        "m.relates_to": {"m.in_reply_to": {"event_id": text.event_id}}}, ignore_unverified_devices=True)
    await wait_mail(s.mail, cardio, lambda m: letter_id in str(m.get("In-Reply-To", "")), 60)
    posted = await s.gp.send_file(s.room, PDF + b"bilan", "Bilan sanguin Durand Marcel.pdf", "application/pdf")
    await s.gp.wait_reply(s.room, posted, 60)   # the bot's notice: indexed
    await send_mail(s.mail, stranger, letter(stranger, s.mail["bridge_address"], subject="Ordonnance Durand",
                                             text="Voir PJ", xdm=xdm_letter()), s.mail["bridge_address"])
    await send_mail(s.mail, cardio, letter(cardio, s.mail["bridge_address"], subject="Autre patient", text="…",
                                           xdm=xdm_letter(ins=f"{OTHER_NIR}{nir_key(OTHER_NIR):02d}")),
                    s.mail["bridge_address"])
    notices = []
    for _ in range(2):
        notices.append(await s.coord.wait_for(lambda r, e: isinstance(e, RoomMessage) and e not in notices
                                              and "quarantaine" in getattr(e, "body", "")
                                              and e.sender.startswith("@mss_relais"), 60))
    quarantine_room = next(r for r, e in s.coord.events if e is notices[0])
    await s.coord.ask(quarantine_room, "!mss quarantaine")


async def test_the_journeys_leave_no_identity_in_the_logs(structure, synapse_log):
    s = structure
    await _journeys(s)
    # The homeserver logs every request's user id and path: a puppet's id names no one (see Structure.puppet).
    homeserver = synapse_log()
    assert any(s.puppet(CARDIO) in line for line in homeserver), "Synapse logged the puppet's requests"
    leaks = [line[:300] for line in homeserver for seed in (CARDIO, "lefebvre", STRANGER) if seed in line.lower()]
    assert not leaks, leaks[:5]
    s.bridge.stop()
    s.bot.stop()
    logs = [s.bot.log_path, s.bridge.log_path, s.bridge.config_path.parent / "bridge.stdout"]
    lines = [(p.name, line) for p in logs for line in p.read_text(errors="replace").splitlines()]
    assert len(lines) > 50, "the journeys were logged"
    leaks = [(name, seed, line[:300]) for name, line in lines for seed in SEEDED if seed.lower() in line.lower()]
    assert not leaks, leaks[:5]
    found = [(name, find_sensitive(line), line[:300]) for name, line in lines if find_sensitive(line)]
    assert not found, found[:5]

    # Outside `liaison up`, with the test runner's umask: the services make their own files owner-only.
    bridge_store = s.bridge.log_path.parent / "bridge-store"
    assert _mode(s.bot.workdir / "liaison.db") == 0o600 and _mode(s.bot.workdir / "store") == 0o700
    assert _mode(s.bridge.log_path) == 0o600 and _mode(bridge_store) == 0o700
    stores = [*s.bot.workdir.glob("store/@*.db"), *bridge_store.rglob("@*.db")]
    assert len(stores) >= 3 and {_mode(p) for p in stores} == {0o600}, "the bot's, the bridge's, a puppet's keys"
