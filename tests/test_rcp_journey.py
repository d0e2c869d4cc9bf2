"""J9 (issue 26) end to end: real Synapse, the real bot process on a clock the test moves (tests/support/
clocked_bot.py), the real bridge and the test MSSanté gateway (Dovecot, mutual-TLS SMTP).

The coordinator plans an RCP; two patients of different teams are enrolled from their rooms; the GP (first patient's
team), the nurse (second's) and a cardiologist by MSSanté address (a consent on the first patient only) take part.
Two days before, the agenda goes out by itself: each place and each reader gets what is decided for them, as their
client decrypts it (the rooms, the GP's conversation with Liaison and its .ics, the cardiologist's mailbox). At the
meeting, decisions become tasks of each pathway; `!rcp clore` posts each case's minutes in its own room only, the
pseudonymous file to the coordination, and the first case's minutes by mail to the cardiologist. Same journey on the
fakes: tests/test_rcp.py."""
from __future__ import annotations

import asyncio
import email
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from nio.crypto.attachments import decrypt_attachment

from liaison.logs import find_sensitive
from policies.ins import nir_key
from tests.support.bridgeproc import bridge_section
from tests.support.clocked_bot import ClockedBot
from tests.support.mss import OPEN, box, drain, imap_for, room_of, wait_mail
from tests.test_tasks_journey import _joined

PARIS = ZoneInfo("Europe/Paris")
CARDIO = "c.lefebvre@chu-demo.mssante.test"
NIR2 = "2520375123456"
OPEN2 = f"!parcours ouvrir {NIR2}{nir_key(NIR2):02d} diabete 03/03/1952 F Lefort Jeanne"
Q1 = "Adapter le traitement diurétique ?\n« poids +3 kg » en une semaine — l’infirmière inquiète"
Q2 = "Insuline le soir ou le matin ?"
D1 = "Augmenter le furosémide à 80 mg ; pesée quotidienne"
D2 = "Revoir le schéma insuline avec la patiente"
IDENTITIES = ("Durand", "Marcel", "Lefort", "Jeanne", "Paul Martin", "Sophie Bernard", "Claire Morel")


@pytest.fixture
def clocked_bot(synapse, new_user, tmp_path):
    """The `bot_process` fixture (tests/conftest.py), on a clock the test moves."""
    made: list[ClockedBot] = []

    def make(staff: list[str], **extra) -> ClockedBot:
        user_id, password = new_user("liaison")
        bot = ClockedBot(tmp_path / f"bot{len(made)}", synapse.url, synapse.server_name, user_id, password, staff,
                         "", extra)
        made.append(bot)
        return bot.start()
    yield make
    for b in made:
        b.stop()


def _says(room: str, *parts: str, sender: str | None = None):
    """A message in `room` whose (decrypted) body holds every part."""
    return lambda r, e: (r == room and all(p in (getattr(e, "body", "") or "") for p in parts)
                         and (sender is None or getattr(e, "sender", None) == sender))


def _bodies(client, room: str) -> str:
    return "\n".join(getattr(e, "body", "") or "" for r, e in client.events if r == room)


async def _file_of(client, event) -> bytes:
    """An encrypted file event's content, downloaded and decrypted as a client does."""
    f = event.source["content"]["file"]
    blob = await client.client.download(mxc=f["url"])
    return decrypt_attachment(blob.body, f["key"]["k"], f["hashes"]["sha256"], f["iv"])


def _is_file(room: str, suffix: str):
    return lambda r, e: (r == room and (getattr(e, "source", {}).get("content") or {}).get("msgtype") == "m.file"
                         and (e.source["content"].get("body") or "").endswith(suffix))


async def _inbox(mail: dict, b: dict) -> list[EmailMessage]:
    imap = imap_for(mail, b)
    await imap.connect()
    try:
        return [email.message_from_bytes(f.raw, policy=policy.default) for f in await imap.fetch_all(limit=10_000)]
    finally:
        await imap.close()


def _text(m: EmailMessage) -> str:
    return m.get_body(("plain",)).get_content().replace("\r\n", "\n")


def _all_of(m: EmailMessage) -> str:
    """Subject, text and every attachment of a mail."""
    parts = [str(m["Subject"]), _text(m)]
    parts += [p.get_payload(decode=True).decode(errors="replace").replace("\r\n ", "") for p in m.iter_attachments()]
    return "\n".join(parts)


def _ics(m: EmailMessage) -> str | None:
    for p in m.iter_attachments():
        if (p.get_filename() or "").endswith(".ics"):
            return p.get_payload(decode=True).decode().replace("\r\n ", "")
    return None


async def _coordination_room(bot: ClockedBot, timeout: float = 30) -> str:
    """The coordination's room (the bridge's quarantine room), made by the bot after its first sync."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with sqlite3.connect(bot.workdir / "liaison.db") as db:
            row = db.execute("SELECT value FROM mss_setting WHERE name = 'quarantine_room'").fetchone()
        if row:
            return row[0]
        assert asyncio.get_running_loop().time() < deadline, "the bot made no coordination room"
        await asyncio.sleep(0.1)


async def test_an_rcp_from_planning_to_minutes_each_case_only_where_it_may_be_read(clinician, clocked_bot,
                                                                                   bridge_process, synapse,
                                                                                   mail_gateway, tmp_path):
    homeserver_log = synapse.log_dir / "synapse.log"
    homeserver_from = homeserver_log.stat().st_size if homeserver_log.exists() else 0
    mail = mail_gateway.info
    cardio = box(mail, CARDIO)
    await drain(mail, mail["bridge"])
    await drain(mail, cardio)
    coord, gp, nurse = await clinician("coordination"), await clinician("medecin"), await clinician("infirmiere")
    roster = [{"user_id": coord.user_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True},
              {"user_id": gp.user_id, "name": "Dr Paul Martin", "profession": "médecin"},
              {"user_id": nurse.user_id, "name": "Sophie Bernard", "profession": "infirmière"}]
    bot = clocked_bot(staff=[], roster=roster, pathways={"ins_test_mode": True}, structure="MSP de test",
                      bridge=bridge_section(synapse, mail, tmp_path / "bridge"))
    bridge = bridge_process(bot)
    desk = await coord.create_room([bot.user_id])
    await coord.wait_joined(desk, bot.user_id)
    coordination = await _coordination_room(bot)
    await _joined(coord, coordination)

    # Two patients, two teams: the GP in the first's, the nurse in the second's.
    opened, _ = await coord.ask(desk, f"{OPEN} --equipe {gp.user_id}", timeout=60)
    first, p1 = room_of(opened.body), re.search(r"\((P-[A-Z0-9]+)\)", opened.body).group(1)
    opened, _ = await coord.ask(desk, f"{OPEN2} --equipe {nurse.user_id}", timeout=60)
    second, p2 = room_of(opened.body), re.search(r"\((P-[A-Z0-9]+)\)", opened.body).group(1)
    for client, room in ((coord, first), (gp, first), (coord, second), (nurse, second)):
        await _joined(client, room)
    mine = await gp.create_room([bot.user_id], name="Liaison")   # the GP's conversation with Liaison
    await gp.wait_joined(mine, bot.user_id)
    consented, _ = await coord.ask(first, f"!consentement enregistrer {CARDIO} écrit")
    assert "enregistré" in consented.body, consented.body

    # Planned three days ahead, at 12:30 in Paris; the cases enrolled from their rooms; the participants.
    day = (datetime.now(PARIS) + timedelta(days=3)).date()
    starts = datetime(day.year, day.month, day.day, 12, 30, tzinfo=PARIS)
    planned, _ = await coord.ask(coordination, f"!rcp planifier le {day:%d/%m} 12h30 salle 2 ; RCP du mois")
    assert "planifiée" in planned.body and "L'ordre du jour partira le" in planned.body, planned.body
    code = re.search(r"\bR-[A-Z0-9]{5}\b", planned.body).group(0)
    enrolled, _ = await gp.ask(first, f"!rcp inscrire {Q1}")
    assert "n° 1" in enrolled.body and enrolled.body.endswith(f"Question : {Q1}"), enrolled.body
    enrolled, _ = await nurse.ask(second, f"!rcp inscrire {Q2}")
    assert "n° 2" in enrolled.body, enrolled.body
    added, _ = await coord.ask(coordination, f"!rcp participants {code} {gp.user_id} {nurse.user_id} {CARDIO}")
    assert "3 participant(s) ajouté(s)" in added.body, added.body
    assert not [e for r, e in coord.events if r == coordination and "Ordre du jour" in (getattr(e, "body", "") or "")]

    # Two days before, the agenda goes out by itself.
    bot.jump_to((starts - timedelta(days=2, minutes=-1)).astimezone(timezone.utc))
    desk_agenda = await coord.wait_for(_says(coordination, "Ordre du jour — RCP", code, sender=bot.user_id), 60)
    assert f"1. {p1} : {Q1}" in desk_agenda.body and f"2. {p2} : {Q2}" in desk_agenda.body, desk_agenda.body
    assert not [w for w in IDENTITIES if w in desk_agenda.body], desk_agenda.body
    case1 = await gp.wait_for(_says(first, "Ordre du jour — RCP", code, sender=bot.user_id), 30)
    assert case1.decrypted and case1.body.endswith(Q1), case1.body
    case2 = await nurse.wait_for(_says(second, "Ordre du jour — RCP", code, sender=bot.user_id), 30)
    assert case2.body.endswith(Q2), case2.body
    invited = await gp.wait_for(_says(mine, "Invitation — RCP", code, sender=bot.user_id), 30)
    assert f"1. {p1} : {Q1}" in invited.body and f"2. {p2} (code seul" in invited.body, invited.body
    ics_event = await gp.wait_for(_is_file(mine, ".ics"), 30)
    ics = (await _file_of(gp, ics_event)).decode().replace("\r\n ", "")   # lines unfolded (RFC 5545)
    assert "BEGIN:VEVENT" in ics and code in ics and p2 in ics, ics
    assert "Insuline" not in ics and "diurétique" in ics, "the second case is its code only"
    nurse_invited = await nurse.wait_for(lambda r, e: r not in (second, coordination) and
                                         _says(r, "Invitation — RCP", code, sender=bot.user_id)(r, e), 30)
    assert nurse_invited.decrypted, "the conversation the bot made for her: readable once she joined"
    assert f"1. {p1} (code seul" in nurse_invited.body and f"2. {p2} : {Q2}" in nurse_invited.body, \
        nurse_invited.body
    assert "diurétique" not in nurse_invited.body
    invitation = await wait_mail(mail, cardio, lambda m: str(m["Subject"]) == f"RCP {code} : invitation", 30)
    attached = _ics(invitation)
    assert attached and "BEGIN:VEVENT" in attached and p1 in attached and p2 in attached, attached
    assert "diurétique" not in _all_of(invitation) and "Insuline" not in _all_of(invitation), "codes only"
    agenda1 = await wait_mail(mail, cardio, lambda m: p1 in str(m["Subject"]) and "ordre du jour" in str(m["Subject"]),
                              30)
    assert f"parcours {p1} : question posée à la réunion :\n{Q1}\n" in _text(agenda1), _text(agenda1)

    # The meeting: opened, who is there, a decision per case, each a task of its pathway.
    bot.jump_to((starts - timedelta(minutes=5)).astimezone(timezone.utc))
    opened, _ = await coord.ask(coordination, f"!rcp ouvrir {code}")
    assert "ouverte" in opened.body and p1 in opened.body and p2 in opened.body, opened.body
    present, _ = await coord.ask(coordination, f"!rcp presents {gp.user_id} {nurse.user_id}")
    assert "2 présent(s) noté(s)" in present.body, present.body
    goal, _ = await gp.ask(first, "!ppcs objectif Rester à domicile cet hiver")   # the care plan's first goal
    assert goal.body.startswith("Objectif n° 1 ajouté au plan"), goal.body
    decided, _ = await coord.ask(coordination, f"!rcp decision {p1} {D1} pour {gp.user_id} échéance lundi objectif 1")
    assert decided.body.startswith(f"Décision n° 1 ({p1}) : tâche n° 1") and "furosémide" not in decided.body, \
        decided.body
    decided, _ = await coord.ask(coordination, f"!rcp decision {p2} {D2} pour infirmier échéance demain")
    assert decided.body.startswith(f"Décision n° 2 ({p2}) : tâche n° 1"), decided.body
    await gp.wait_for(_says(first, "Décision de la RCP", D1, sender=bot.user_id), 30)
    tasks1, _ = await gp.ask(first, "!taches")
    assert "n° 1" in tasks1.body and "furosémide" in tasks1.body, tasks1.body
    plan, _ = await gp.ask(first, "!ppcs")   # the decision's task under the goal it serves
    assert "Objectif n° 1 (en cours) : Rester à domicile cet hiver\n  · tâche n° 1" in plan.body, plan.body
    tasks2, _ = await nurse.ask(second, "!taches")
    assert "n° 1" in tasks2.body and "schéma insuline" in tasks2.body, tasks2.body

    # Closed: each case's minutes in its own room, the pseudonymous file to the coordination, mail for case 1 only.
    closed, _ = await coord.ask(coordination, "!rcp clore")
    assert "close" in closed.body and "2 salon(s) de patient" in closed.body and "1 courriel(s)" in closed.body, \
        closed.body
    minutes1 = await gp.wait_for(_says(first, "Compte rendu — RCP", code, sender=bot.user_id), 30)
    assert D1 in minutes1.body and Q1 in minutes1.body and "Insuline" not in minutes1.body, minutes1.body
    minutes2 = await nurse.wait_for(_says(second, "Compte rendu — RCP", code, sender=bot.user_id), 30)
    assert D2 in minutes2.body and "furosémide" not in minutes2.body, minutes2.body
    assert "furosémide" not in _bodies(nurse, second) and "diurétique" not in _bodies(nurse, second)
    assert "Insuline" not in _bodies(gp, first) and "insuline" not in _bodies(gp, first)
    named = f"compte-rendu-{code}.txt"
    pseudonymous = (await _file_of(coord, await coord.wait_for(_is_file(coordination, named), 30))).decode()
    assert p1 in pseudonymous and p2 in pseudonymous and D1 in pseudonymous and D2 in pseudonymous, pseudonymous
    assert not [w for w in IDENTITIES if w in pseudonymous], pseudonymous
    minutes_mail = await wait_mail(mail, cardio, lambda m: "compte rendu" in str(m["Subject"])
                                   and p1 in str(m["Subject"]), 30)
    assert D1 in _text(minutes_mail) and "Insuline" not in _all_of(minutes_mail), _text(minutes_mail)

    # Nothing about the second patient reached the cardiologist beyond its code in the invitation.
    await asyncio.sleep(1)   # a mail queued after the minutes' would be here by now (the bridge polls every 0.5 s)
    inbox = await _inbox(mail, cardio)
    assert len(inbox) == 3, [str(m["Subject"]) for m in inbox]
    about2 = [str(m["Subject"]) for m in inbox if "insuline" in _all_of(m).lower()
              or (p2 in _all_of(m) and str(m["Subject"]) != f"RCP {code} : invitation")]
    assert not about2, about2

    # No patient's data nor the correspondent's address in the services' logs, nor in the homeserver's.
    bridge.stop()
    bot.stop()
    logs = [bot.log_path, bridge.log_path]
    lines = [line for path in logs for line in path.read_text(errors="replace").splitlines()]
    seeds = (*IDENTITIES, CARDIO, "diurétique", "furosémide", "Insuline", "schéma")
    assert not [(s, line[:200]) for line in lines for s in seeds if s.lower() in line.lower()][:3]
    assert not [line[:200] for line in lines if find_sensitive(line)][:3]
    with homeserver_log.open("rb") as fh:
        fh.seek(homeserver_from)
        homeserver = fh.read().decode(errors="replace").lower()
    assert not [s for s in (*seeds, ".ics", named) if s.lower() in homeserver]
