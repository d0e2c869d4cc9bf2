"""!tache on the fakes, at a fixed moment in Paris: due dates in plain French (across the changes of time), text kept
byte for byte, refusals that change nothing, and a profession's request taken by the second nurse."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.task_dates import Due, read_due, shown
from liaison.clock import MovableClock
from tests.fakes import COORD, GP, NURSE, OUTSIDER
from tests.test_subcommands import World, worlds  # noqa: F401 (the worlds fixture)

PARIS = ZoneInfo("Europe/Paris")
NURSE2 = "@infirmier2:hs"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(timezone.utc)


@pytest.mark.parametrize("typed, expected", [
    ("demain", "09/01/2027"), ("dans 3 jours", "11/01/2027"), ("lundi", "11/01/2027"),
    ("le 12/01", "12/01/2027"), ("12 janvier 14h", "12/01/2027 14:00"), ("lundi 9h30", "11/01/2027 09:30"),
    ("dans 5 minutes", "08/01/2027 10:05"), ("dans 2 heures", "08/01/2027 12:00"), ("ce soir", "08/01/2027 19:00"),
    ("demain matin", "09/01/2027 09:00"), ("Lundi Après-midi", "11/01/2027 14:00"), ("12 février soir", "12/02/2027 19:00"),
])
def test_a_due_date_is_read_in_plain_french_in_paris(typed, expected):
    due = read_due(typed, at(2027, 1, 8, 10, 0))   # a Friday
    assert isinstance(due, Due) and shown(due.at) == expected


@pytest.mark.parametrize("now, typed, expected", [
    (at(2027, 3, 26, 10, 0), "dans 3 jours 10h", "29/03/2027 10:00"),   # summer time begins on 28/03
    (at(2027, 10, 29, 10, 0), "dans 3 jours 10h", "01/11/2027 10:00"),  # winter time begins on 31/10
    (at(2027, 3, 26, 10, 0), "dans 3 jours", "29/03/2027"),
])
def test_dans_3_jours_keeps_its_wall_time_across_the_change_of_time(now, typed, expected):
    due = read_due(typed, now)
    assert isinstance(due, Due) and shown(due.at) == expected


def test_a_recurrence_and_what_cannot_be_read():
    weekly = read_due("lundi chaque semaine", at(2027, 1, 8, 10, 0))
    assert isinstance(weekly, Due) and weekly.recurrence == "FREQ=WEEKLY" and shown(weekly.at) == "11/01/2027"
    assert "n'est pas une échéance" in read_due("quand tu peux", at(2027, 1, 8, 10, 0))
    assert "déjà passée" in read_due("le 01/01/2027", at(2027, 1, 8, 10, 0))


async def two_nurses(world: World) -> str:
    """A pathway whose room the GP and two nurses (Sophie Bernard, Luc Petit) have joined."""
    world.m.add_account(NURSE2, "Luc Petit")
    await world.say(COORD, f"!equipe ajouter {NURSE2} infirmier")
    room = await world.open(team="medecin,infirmier")
    for nurse in (NURSE, NURSE2):
        world.m.accept(room, nurse)
    return room


@pytest.fixture
async def paris(worlds) -> World:
    return await worlds(clock=MovableClock(at(2027, 1, 8, 10, 0)))


async def test_text_is_kept_byte_for_byte_and_a_for_that_is_not_a_person_stays_in_it(paris):
    room = await paris.open()
    text = "Préparer le pilulier pour la semaine\n« matin » et soir — l’aide à domicile prévenue"
    made = await paris.say(GP, f"!tache {text} échéance demain", room)
    assert made.text.endswith(f":\n{text}"), made.text
    assert "Dr Paul Martin" in made.text and "échéance 09/01/2027" in made.text


async def test_refusals_say_why_and_change_nothing(paris):
    room = await paris.open()
    before = await paris.traced()   # but the room's own decisions to show an answer
    past = await paris.say(GP, "!tache Bilan sanguin échéance le 01/01/2027", room)
    assert past.text.startswith("Tâche non créée : l'échéance") and "« !tache Bilan sanguin échéance demain »" in past.text
    unread = await paris.say(GP, "!tache Bilan échéance quand tu peux", room)
    assert "n'est pas une échéance" in unread.text and "Par exemple" in unread.text
    assert await paris.traced() == before, "a date refused: nothing decided, nothing traced"
    outsider = await paris.say(GP, f"!tache Bilan pour {OUTSIDER}", room)
    assert "Tâche non créée" in outsider.text and "outside.no_consent" in outsider.text, outsider.text
    nobody = await paris.say(GP, "!tache Bilan pour kinésithérapeute", room)
    assert "aucun membre du parcours" in nobody.text
    assert await paris.s.tasks.of_pathway((await paris.pathway(room)).id) == []
    assert "Aucune tâche n° 7" in (await paris.say(GP, "!tache faite 7", room)).text
    await paris.say(GP, "!tache Bilan", room)
    await paris.say(GP, "!tache annuler 1", room)
    assert (await paris.say(GP, "!tache faite 1", room)).text == "La tâche n° 1 est annulée : rien n'a changé."


async def test_a_request_to_nurses_is_taken_by_the_second_and_the_first_sees_it_taken(paris):
    room = await two_nurses(paris)
    made = await paris.say(GP, "!tache Pansement du talon pour infirmière échéance demain 9h", room)
    assert "demandée aux infirmiers du parcours (2)" in made.text, made.text
    taken = await paris.say(NURSE2, "!tache prendre 1", room)
    assert "prise en charge par Luc Petit" in taken.text, taken.text
    late = await paris.say(NURSE, "!tache prendre 1", room)
    assert late.text == "La tâche n° 1 est déjà prise en charge par Luc Petit (Infirmier) : rien n'a changé."
    mine = await paris.say(NURSE2, "!taches", paris.direct(NURSE2))
    assert "Vos tâches (1)" in mine.text and "n° 1 · échéance 09/01/2027 09:00" in mine.text, mine.text
    assert "Aucune tâche ouverte" in (await paris.say(NURSE, "!taches", paris.direct(NURSE))).text


async def test_closing_a_pathway_cancels_its_open_tasks_and_keeps_their_history(paris):
    room = await paris.open()
    await paris.say(GP, "!tache Bilan sanguin échéance demain", room)
    await paris.say(GP, "!tache Appeler la fille", room)
    await paris.say(GP, "!tache faite 2", room)
    closed = await paris.say(COORD, "!parcours clore fin de prise en charge", room)
    assert closed.text.endswith("Tâches ouvertes annulées avec lui : n° 1 (leur historique reste)."), closed.text
    states = {t.number: t.state for t in await paris.s.tasks.of_pathway((await paris.pathway(room)).id)}
    assert states == {1: "annulee", 2: "faite"}
    assert "Aucune tâche ouverte pour vous." in (await paris.say(GP, "!taches", paris.direct(GP))).text


async def test_an_objection_that_removes_the_owner_hands_their_tasks_back_to_the_coordination(paris):
    """Issue 25, item 7: removed by the law, one holds nothing of the patient any more: their open tasks become a
    request to the coordination, said in the room's notice, and a coordinator takes or hands it on."""
    room = await paris.open(team="medecin,infirmier")
    paris.m.accept(room, NURSE)
    await paris.say(GP, "!tache Pansement du talon pour infirmière échéance demain", room)
    await paris.say(NURSE, "!tache prendre 1", room)
    objected = await paris.say(COORD, f"!opposition enregistrer {NURSE}", room)
    assert objected.text.startswith("Opposition enregistrée"), objected.text
    assert paris.m.room(room).membership[NURSE] == "leave"
    notice = next(b for b in reversed(paris.m.bodies(room)) if "retiré(e) du salon" in b)
    assert "Ses tâches ouvertes (n° 1) sont rendues à la coordination" in notice and "objection.person" in notice
    (task,) = await paris.s.tasks.of_pathway((await paris.pathway(room)).id)
    assert (task.owner, task.profession, task.state) == (None, "coordinateur", "a_faire")
    assert [e.what for e in await paris.s.tasks.history(task.id)][-1] == "rendue"
    taken = await paris.say(COORD, f"!tache confier 1 {GP}", room)
    assert "confiée à" in taken.text, taken.text


async def test_a_text_that_begins_with_a_sub_command_s_word_is_a_new_task(paris):
    """`!tache Annuler le rendez-vous du cardiologue` is a task to do, not `!tache annuler <n>`: the word after it is
    no task number. With a number it is the sub-command; without anything, its usage."""
    room = await paris.open()
    made = await paris.say(GP, "!tache Annuler le rendez-vous du cardiologue échéance demain", room)
    assert made.text.startswith("Tâche n° 1 créée") and made.text.endswith(":\nAnnuler le rendez-vous du cardiologue")
    done = await paris.say(GP, "!tache Faite la prise de sang ? à vérifier", room)
    assert done.text.startswith("Tâche n° 2 créée"), done.text
    assert (await paris.say(GP, "!tache annuler 1", room)).text.startswith("Tâche n° 1 annulée")
    assert "il manque : n" in (await paris.say(GP, "!tache faite", room)).text


async def test_the_circle_room_sees_only_the_tasks_of_the_categories_it_shares(paris):
    """Issue 25, item 7: a social worker in the circle room reads the social tasks, never a care task; with none of
    its categories, the answer names the rule."""
    from tests.fakes import SOCIAL
    from tests.test_subcommands import room_of

    room = await paris.open()
    await paris.consent(room, SOCIAL, "écrit catégories:social")
    circle = room_of((await paris.say(COORD, f"!parcours inviter {SOCIAL}", room)).text)
    paris.m.accept(circle, SOCIAL)
    await paris.say(GP, "!tache Adapter la posologie du furosémide échéance demain", room)
    empty = await paris.say(SOCIAL, "!taches", circle)
    assert "room.circle_category" in empty.text and "furosémide" not in empty.text, empty.text
    await paris.say(GP, "!tache Dossier APA à compléter échéance demain catégorie social", room)
    shown = await paris.say(SOCIAL, "!taches", circle)
    assert "n° 2 · Dossier APA à compléter" in shown.text and "furosémide" not in shown.text, shown.text
    for_her = await paris.say(GP, f"!tache Demande d'aide à domicile pour {SOCIAL} catégorie social", room)
    assert "Tâche n° 3 créée, Nadia Haddad" in for_her.text, "a social task goes to the circle room's social worker"
    care = await paris.say(GP, f"!tache Surveiller la tension pour {SOCIAL}", room)
    assert care.text.startswith("Tâche non créée") and "n° 4" not in care.text, "never a care task"


async def test_a_task_s_history_says_who_did_what_and_when(paris):
    room = await paris.open(team="medecin,infirmier")
    paris.m.accept(room, NURSE)
    await paris.say(GP, "!tache Pansement du talon pour infirmière échéance demain", room)
    await paris.say(NURSE, "!tache prendre 1", room)
    await paris.say(NURSE, "!tache reporter 1 dans 3 jours", room)
    await paris.say(NURSE, "!tache faite 1 plaie propre", room)
    history = (await paris.say(GP, "!tache historique 1", room)).text.splitlines()
    assert history[0] == "Tâche n° 1 (faite) : Pansement du talon"
    what = [line.split(" — ")[1] for line in history[1:]]
    assert [w.split(",")[0].split(" :")[0] for w in what] == ["créée", "prise en charge", "reportée", "faite"], what
    assert what[0].endswith("par Dr Paul Martin (Médecin)") and what[1].endswith("par Sophie Bernard (Infirmière)")
    assert "échéance 11/01/2027" in what[2] and "plaie propre" in what[3], what
    assert "Aucune tâche n° 9" in (await paris.say(GP, "!tache historique 9", room)).text


async def test_my_tasks_list_the_nearest_forty_and_say_how_many_are_further(paris):
    """An answer is one event (Synapse refuses one over 64 KiB) and is read by a person: the 40 nearest tasks, and the
    count of the others; only the pathways needed for them are decided."""
    room = await paris.open()
    pathway = await paris.pathway(room)
    for i in range(45):
        await paris.s.tasks.create(pathway.id, text_=f"Suivi {i}", actor=GP, owner=GP,
                                   due_at=int(at(2027, 2, 1 + i % 28, 9, 0).timestamp() * 1000) + i)
    mine = (await paris.say(GP, "!taches", paris.direct(GP))).text.splitlines()
    assert mine[0] == "Vos tâches : les 40 plus proches (et 5 autre(s) plus loin : !taches dans le salon de chaque " \
                      "parcours) :", mine[0]
    assert len(mine) == 41 and mine[1].startswith(f"{pathway.code} n° 1 · échéance 01/02/2027 09:00")


async def test_a_task_is_changed_by_its_owner_its_author_the_coordination_or_its_profession_until_taken(paris):
    room = await two_nurses(paris)
    await paris.say(GP, f"!tache Bilan pour {NURSE}", room)
    before = await paris.traced()
    for line in ("!tache faite 1", "!tache annuler 1", "!tache reporter 1 demain", f"!tache confier 1 {NURSE2}"):
        refused = await paris.say(NURSE2, line, room)
        assert refused.text.startswith("La tâche n° 1 est à Sophie Bernard (Infirmière) : seuls son responsable, qui "
                                       "l'a créée (Dr Paul Martin (Médecin)) et la coordination peuvent la "), refused.text
        assert refused.text.endswith("Rien n'a changé.")
    assert await paris.traced() == before
    assert "reportée" in (await paris.say(GP, "!tache reporter 1 demain", room)).text        # its author
    assert "confiée à Luc Petit" in (await paris.say(COORD, f"!tache confier 1 {NURSE2}", room)).text   # coordination
    assert "faite" in (await paris.say(NURSE2, "!tache faite 1", room)).text                 # its owner now
    await paris.say(GP, "!tache Pansement pour infirmière", room)
    assert "Tâche n° 2 faite" in (await paris.say(NURSE, "!tache faite 2", room)).text       # asked of her profession
