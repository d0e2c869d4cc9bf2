"""!rcp on the fakes, at a fixed moment in Paris (journey J9 without the homeserver): a meeting planned, two patients
of different teams enrolled, participants of the structure and by mail, the agenda sent by itself two days before
(each case decided per place and per reader), decisions that are tasks, the minutes in each patient's room only."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B import get_fhir_model_class

from bot.rcp_agenda import RcpAgenda
from liaison.clock import MovableClock
from policies.ins import nir_key
from tests.fakes import COORD, GP, NURSE, OUTSIDER
from tests.test_subcommands import CARDIO, World, room_of, worlds  # noqa: F401 (the worlds fixture)

PARIS = ZoneInfo("Europe/Paris")
NIR2 = "2520375123456"
OPEN2 = f"!parcours ouvrir {NIR2}{nir_key(NIR2):02d} diabete 03/03/1952 F Lefort Jeanne"
QUESTION = "Adapter le traitement diurétique ?\n« poids +3 kg » en une semaine — l’infirmière inquiète"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(timezone.utc)


@pytest.fixture
async def paris(worlds) -> tuple[World, MovableClock]:
    clock = MovableClock(at(2027, 1, 4, 10, 0))   # a Monday
    return await worlds(clock=clock), clock


async def two_patients(world: World) -> tuple[str, str, str]:
    """The coordination's room, a heart-failure pathway (the GP's team) and a diabetes one (the nurse's)."""
    coordination = await world.coordination_room()
    first = await world.open()
    reply = await world.say(COORD, f"{OPEN2} --equipe infirmier")
    second = room_of(reply.text)
    world.m.accept(second, COORD)
    world.m.accept(second, NURSE)
    return coordination, first, second


def texts(world: World, room: str) -> list[str]:
    return [s.content.get("body", "") for s in world.m.sent if s.room_id == room]


async def planned(world: World, coordination: str, line: str = "jeudi 7 janvier 12h30 salle 2 ; RCP du mois") -> str:
    reply = await world.say(COORD, f"!rcp planifier {line}", coordination)
    assert "planifiée" in reply.text, reply.text
    return reply.text.split()[1]


async def test_a_meeting_is_planned_listed_moved_and_bad_input_changes_nothing(paris):
    world, clock = paris
    coordination, room, _ = await two_patients(world)
    code = await planned(world, coordination)
    assert code.startswith("R-")
    listed = await world.say(GP, "!rcp", coordination)
    assert code in listed.text and "jeudi 07/01/2027 à 12:30, salle 2 — RCP du mois" in listed.text
    before = world.moves()
    for line, said in (("hier 14h", "déjà passée"), ("jeudi", "précisez l'heure"), ("quand tu veux", "je ne lis pas")):
        reply = await world.say(COORD, f"!rcp planifier {line}", coordination)
        assert reply.text.startswith("RCP non planifiée") and said in reply.text, reply.text
    assert (await world.say(COORD, "!rcp annuler R-ZZZZZ", coordination)).text.startswith("Aucune RCP de code")
    assert (await world.say(COORD, "!rcp clore", coordination)).text.startswith("Aucune RCP ouverte")
    refused = await world.say(COORD, f"!rcp decision P-22222 suivi {code}", coordination)
    assert refused.text.startswith("Aucune RCP ouverte")
    assert world.moves() == before
    moved = await world.say(COORD, f"!rcp deplacer {code} vendredi 8 janvier 13h", coordination)
    assert "déplacée" in moved.text and "vendredi 08/01/2027 à 13:00" in moved.text
    elsewhere = await world.say(COORD, f"!rcp participants {code} {GP} dr.x@gmail.example", coordination)
    assert "n'appartient pas à l'espace de confiance MSSanté" in elsewhere.text
    assert "aucun pour l'instant" in (await world.say(COORD, f"!rcp participants {code}", coordination)).text
    in_room = await world.say(GP, "!rcp planifier jeudi 12h", room)
    assert "salon de la coordination" in in_room.text


async def test_a_case_is_enrolled_once_its_question_verbatim_and_announced_in_its_room(paris):
    world, _clock = paris
    coordination, first, second = await two_patients(world)
    nobody = await world.say(GP, f"!rcp inscrire {QUESTION}", first)
    assert "aucune RCP prévue" in nobody.text
    code = await planned(world, coordination)
    made = await world.say(GP, f"!rcp inscrire {QUESTION}", first)
    assert made.text.endswith(f"Question : {QUESTION}") and "n° 1" in made.text, made.text
    twice = await world.say(GP, "!rcp inscrire encore", first)
    assert "déjà inscrit" in twice.text
    pathway2 = await world.pathway(second)
    from_desk = await world.say(COORD, f"!rcp inscrire {pathway2.code} {code} Insuline le soir ?", coordination)
    assert "n° 2" in from_desk.text and "Annoncé" in from_desk.text
    assert any(t.startswith("Ce patient est inscrit à la RCP") and t.endswith("Insuline le soir ?\n(trace "
                                                                               + t.split("(trace ")[-1])
               for t in texts(world, second))
    items = await world.s.rcp.items((await world.s.rcp.by_code(code)).id)
    assert [i.question for i in items] == [QUESTION, "Insuline le soir ?"]


async def _meeting_with_agenda(world: World, clock: MovableClock):
    coordination, first, second = await two_patients(world)
    code = await planned(world, coordination)
    await world.say(GP, f"!rcp inscrire {QUESTION}", first)
    await world.say(NURSE, "!rcp inscrire Insuline le soir ?", second)
    reply = await world.say(COORD, f"!rcp participants {code} {GP} {NURSE} {CARDIO}", coordination)
    assert "3 participant(s) ajouté(s)" in reply.text, reply.text
    gp_direct, nurse_direct = world.direct(GP), world.direct(NURSE)
    agenda = RcpAgenda(world.s, days_before=2)
    assert await agenda.run_once() == 0   # three days before: not yet
    await clock.advance(to=at(2027, 1, 5, 12, 30))
    assert await agenda.run_once() == 1
    assert await agenda.run_once() == 0   # sent once
    return coordination, first, second, code, gp_direct, nurse_direct, agenda


async def test_the_agenda_goes_out_two_days_before_each_case_decided_for_each_reader(paris):
    world, clock = paris
    coordination, first, second, code, gp_direct, nurse_direct, agenda = await _meeting_with_agenda(world, clock)
    p1, p2 = await world.pathway(first), await world.pathway(second)
    desk = texts(world, coordination)[-1]
    assert desk.startswith("Ordre du jour — RCP") and f"1. {p1.code} : {QUESTION}" in desk
    assert f"2. {p2.code} : Insuline le soir ?" in desk and "Durand" not in desk and "Lefort" not in desk
    assert QUESTION in texts(world, first)[-1] and "Insuline" not in "".join(texts(world, first))
    assert "Insuline le soir ?" in texts(world, second)[-1] and QUESTION not in "".join(texts(world, second))
    # the GP is in the first patient's team only: the second case is its code, in the text and in the .ics
    gp_text = texts(world, gp_direct)
    assert any(f"1. {p1.code} : {QUESTION}" in t for t in gp_text)
    assert any(f"2. {p2.code} (code seul" in t and "Insuline" not in t for t in gp_text)
    ics = {room: data.decode() for room, name, mime, data in world.m.files if mime == "text/calendar"}
    assert set(ics) == {gp_direct, nurse_direct}
    assert "BEGIN:VEVENT" in ics[gp_direct] and "Insuline" not in ics[gp_direct] and "DTSTART" in ics[gp_direct]
    assert "Insuline" in ics[nurse_direct] and "diurétique" not in ics[nurse_direct]
    # the cardiologist by mail: an invitation with the codes; no case, since no consent covers him
    mails = await world.s.rcp.waiting_mail()
    assert [(m.kind, m.address, m.pathway_id) for m in mails] == [("invitation", CARDIO, None)]
    assert "BEGIN:VCALENDAR" in (mails[0].ics or "") and p1.code in mails[0].body and QUESTION not in mails[0].body
    # a change after it went out: sent again, « modifié »
    await world.say(COORD, f"!rcp participants {code} {OUTSIDER}", coordination)
    assert texts(world, coordination)[-1].startswith("Ordre du jour modifié")


async def test_a_consent_lets_the_external_participant_read_that_case_by_mail(paris):
    world, clock = paris
    coordination, first, _second = await two_patients(world)
    await world.consent(first, CARDIO)
    code = await planned(world, coordination)
    await world.say(GP, f"!rcp inscrire {QUESTION}", first)
    await world.say(COORD, f"!rcp participants {code} {CARDIO}", coordination)
    await clock.advance(to=at(2027, 1, 5, 12, 30))
    await RcpAgenda(world.s).run_once()
    mails = {m.kind: m for m in await world.s.rcp.waiting_mail()}
    assert set(mails) == {"invitation", "agenda"} and mails["agenda"].body.endswith(QUESTION)
    assert mails["agenda"].pathway_id == (await world.pathway(first)).id and mails["agenda"].event_id


async def test_decisions_are_tasks_and_the_minutes_go_to_each_patient_room_only(paris):
    world, clock = paris
    coordination, first, second, code, _gp, _nurse, _agenda = await _meeting_with_agenda(world, clock)
    p1, p2 = await world.pathway(first), await world.pathway(second)
    early = await world.say(COORD, f"!rcp clore {code}", coordination)
    assert "seule une réunion ouverte" in early.text
    opened = await world.say(COORD, f"!rcp ouvrir {code}", coordination)
    assert "ouverte" in opened.text and p1.code in opened.text
    await world.say(COORD, f"!rcp presents {GP} {NURSE}", coordination)
    off = await world.say(COORD, f"!rcp decision P-ZZZZZ Faire un bilan pour {GP}", coordination)
    assert "n'est pas à l'ordre du jour" in off.text
    decided = await world.say(COORD, f"!rcp decision {p1.code} Augmenter le furosémide à 80 mg ; pesée quotidienne "
                                     f"pour {GP} échéance lundi", coordination)
    assert decided.text.startswith("Décision n° 1") and "tâche n° 1" in decided.text, decided.text
    assert "furosémide" not in decided.text   # the coordination's room reads the code, the task, who: not the text
    outside = await world.say(COORD, f"!rcp decision {p2.code} Revoir le schéma pour {GP}", coordination)
    assert "Aucune décision enregistrée" in outside.text   # the GP is not in the second patient's team
    await world.say(COORD, f"!rcp decision {p2.code} Revoir le schéma insuline pour infirmier", coordination)
    task = (await world.s.tasks.of_pathway(p1.id))[0]
    assert task.owner == GP and task.text == "Augmenter le furosémide à 80 mg ; pesée quotidienne"
    assert (await world.s.rcp.decision_of_task(task.id))[1].number == 1
    assert any("Décision de la RCP" in t and "furosémide" in t for t in texts(world, first))
    closed = await world.say(COORD, "!rcp clore", coordination)
    assert "close" in closed.text and "2 salon(s) de patient" in closed.text, closed.text
    minutes1, minutes2 = texts(world, first)[-1], texts(world, second)[-1]
    assert minutes1.startswith("Compte rendu — RCP") and "furosémide" in minutes1 and "Insuline" not in minutes1
    assert "1 infirmière" in minutes1 or "1 infirmier" in minutes1
    assert "schéma insuline" in minutes2 and "furosémide" not in minutes2
    name, data = next((n, d) for r, n, _m, d in world.m.files if r == coordination)
    pseudonymous = data.decode()
    assert name == f"compte-rendu-{code}.txt" and p1.code in pseudonymous and p2.code in pseudonymous
    for identity in ("Durand", "Marcel", "Lefort", "Jeanne", "Paul Martin", "Sophie Bernard"):
        assert identity not in pseudonymous
    again = await world.say(COORD, f"!rcp clore {code}", coordination)
    assert "est close" in again.text
    # the FHIR export: the decision's task is based on the plan and on that RCP decision, and validates
    await world.say(COORD, f"!parcours export {p1.code}", coordination)
    exported = json.loads(next(d for r, n, _m, d in world.m.files if n == f"parcours-{p1.code}.fhir.json"))
    tasks = [e["resource"] for e in exported["entry"] if e["resource"]["resourceType"] == "Task"]
    get_fhir_model_class("Task").model_validate(tasks[0])
    assert tasks[0]["basedOn"][1] == {"identifier": {"system": "urn:liaison:rcp-decision", "value": f"{code}/1"},
                                      "display": f"Décision n° 1 de la RCP {code} du 2027-01-07"}


async def test_the_archive_carries_the_cases_and_forgets_them_with_the_pathway(paris):
    from bot.archive import Archiver
    world, clock = paris
    coordination, first, _second = await two_patients(world)
    code = await planned(world, coordination)
    await world.say(GP, f"!rcp inscrire {QUESTION}", first)
    await world.say(COORD, "!parcours clore fin de suivi", first)
    pathway = await world.pathway(first)
    await clock.advance(731 * 86_400)
    assert await Archiver(world.s).run_once() == 1
    archive = next(d for _r, n, _m, d in world.m.files if n.startswith("archive")).decode()
    assert f"RCP {code} du jeudi 07/01/2027 à 12:30 (prévue), cas n° 1 : {QUESTION}" in archive
    assert await world.s.rcp.items_of_pathway(pathway.id) == []


async def test_minutes_a_crash_left_half_out_are_finished_by_the_next_pass_and_never_twice(paris):
    world, clock = paris
    coordination, first, second, code, _gp, _nurse, agenda = await _meeting_with_agenda(world, clock)
    await world.say(COORD, f"!rcp ouvrir {code}", coordination)
    rcp = await world.s.rcp.by_code(code)
    await world.s.rcp.close(rcp, COORD)   # closed, then the bot stopped before any minutes went out
    assert await agenda.run_once() == 1
    assert texts(world, first)[-1].startswith("Compte rendu") and texts(world, second)[-1].startswith("Compte rendu")
    sent = len(world.m.sent)
    assert await agenda.run_once() == 0 and len(world.m.sent) == sent
    assert [n for _r, n, _m, _d in world.m.files].count(f"compte-rendu-{code}.txt") == 1


async def test_a_meeting_cancelled_after_its_agenda_tells_each_room_and_participant_and_withdraws_the_invitation(
        paris):
    world, clock = paris
    coordination, first, second, code, gp_direct, _nurse, agenda = await _meeting_with_agenda(world, clock)
    cancelled = await world.say(COORD, f"!rcp annuler {code}", coordination)
    assert cancelled.text.endswith("Les salons des patients inscrits et les participants sont prévenus.")
    assert "annulée" in texts(world, first)[-1] and "annulée" in texts(world, second)[-1]
    assert QUESTION not in texts(world, first)[-1]   # the cancellation says no case
    withdrawn = [d.decode() for r, _n, m, d in world.m.files if r == gp_direct and m == "text/calendar"][-1]
    assert "METHOD:CANCEL" in withdrawn and "STATUS:CANCELLED" in withdrawn
    mails = [m for m in await world.s.rcp.waiting_mail() if m.address == CARDIO]   # the clock stands still: any order
    assert [m.kind for m in mails] == ["invitation", "invitation"]
    assert any("METHOD:CANCEL" in (m.ics or "") and "annulée" in m.body for m in mails)
    assert await agenda.run_once() == 0, "a cancelled meeting's agenda never goes out again"
    again = await world.say(COORD, f"!rcp annuler {code}", coordination)
    assert "est annulée : rien n'a changé" in again.text
