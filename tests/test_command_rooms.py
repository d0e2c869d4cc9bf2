"""Issue 24, item 3: every command that shows a patient's data is decided against the room its answer is read in.

Each command declared `patient_data` is typed by the coordination in each kind of room (the circle room, a room of
three, a direct conversation, the coordination's room, the clinical room). Either it does not run there (one of the
sentences of the preconditions, and nothing shown), or a SHOW decision (`command.show`, or the command's own path
such as `ppcs.show`) was traced for that very room: its rule names the room (room.clinical in the clinical room,
room.circle… in the circle room, room.direct, room.coordination, room.not_pathway elsewhere). A new command that shows patients' data fails here until it has a
line below and a decision for its room.
"""
from __future__ import annotations

import pytest

from bot.registry import CLOSED, ROOMS
from bot.rooms import CIRCLE_NO_CHANGE
from tests.fakes import COORD, GP, NURSE, OUTSIDER
from tests.test_subcommands import CARDIO, REGISTRY, World, worlds  # noqa: F401 (the worlds fixture)

LINES = {   # one line per command or sub-command that shows or takes a patient's data
    "consentement enregistrer": f"!consentement enregistrer {OUTSIDER} écrit",
    "consentement retirer": f"!consentement retirer {OUTSIDER}",
    "opposition enregistrer": f"!opposition enregistrer {NURSE}",
    "opposition lever": f"!opposition lever {NURSE}",
    "consentements": "!consentements",
    "docs": "!docs",
    "doc voir": "!doc voir 1",
    "doc type": "!doc type 1 biologie",
    "doc envoyer": f"!doc envoyer 1 {CARDIO}",
    "mss quarantaine": "!mss quarantaine",
    "mss router": "!mss router 1 {code}",
    "mss rejeter": "!mss rejeter 1",
    "mss ecrire": f"!mss ecrire {CARDIO} Bonjour",
    "parcours liste": "!parcours liste",
    "parcours ouvrir": None,   # shows="none": the answer to what the coordination typed
    "parcours export": "!parcours export {code}",
    "parcours types": None,    # shows="none": the structure's types, no patient's data
    "parcours info": "!parcours info",
    "parcours resume": "!parcours resume problemes HTA",
    "parcours clore": "!parcours clore fin de prise en charge",
    "parcours rouvrir": "!parcours rouvrir",
    "parcours inviter": f"!parcours inviter {NURSE}",
    "trace": "!trace",
    "tache nouvelle": "!tache Appeler l'officine",
    "tache prendre": "!tache prendre 1",
    "tache faite": "!tache faite 1",
    "tache reporter": "!tache reporter 1 demain",
    "tache confier": f"!tache confier 1 {GP}",
    "tache annuler": "!tache annuler 1",
    "tache historique": "!tache historique 1",
    "taches": "!taches",
    "protocole liste": None,   # shows="none": the structure's protocols, no patient's data
    "protocole appliquer": "!protocole appliquer insuffisance-cardiaque",
    "ppcs voir": "!ppcs",      # decided on ppcs.show (« montrer le plan personnalisé »), per category
    "ppcs objectif": "!ppcs objectif Rester à domicile",
    "ppcs atteint": "!ppcs atteint 1",
    "ppcs abandonner": "!ppcs abandonner 1",
    "ppcs referent": f"!ppcs referent {GP}",
    "ppcs mots": "!ppcs mots Rester chez moi",
    "rcp planifier": None,     # shows="none": the meeting the coordination typed
    "rcp liste": "!rcp",
    "rcp ordre": "!rcp ordre {rcp}",
    "rcp annuler": None,       # shows="none": the meeting, no case
    "rcp deplacer": None,
    "rcp inscrire": "!rcp inscrire {code} Adapter le traitement ?",
    "rcp participants": None,  # shows="none": professionals, no patient
    "rcp ouvrir": "!rcp ouvrir {rcp}",
    "rcp presents": None,
    "rcp decision": None,      # shows="none": the code and the owner typed; the patient's room is told (rcp.decision)
    "rcp clore": None,         # shows="none": counts; the minutes go to each room, decided (rcp.minutes)
}
RULES = {   # what may be traced for a command's answer in each kind of room
    "clinical": {"room.clinical"},
    "circle": {"room.circle", "room.circle_category"},
    "desk": {"room.not_pathway"},
    "direct": {"room.direct"},
    "coordination": {"room.coordination"},
}
NOT_HERE = {*ROOMS.values(), CIRCLE_NO_CHANGE, CLOSED}


def patient_data_invocations() -> dict[str, str]:
    """Every command or sub-command declared `patient_data`, and what its answer shows (registry.SHOWS)."""
    found = {}
    for cmd in REGISTRY.commands:
        if cmd.patient_data:
            for sub in cmd.subs or [None]:
                name = f"{cmd.name} {sub.name}" if sub else cmd.name
                found[name] = sub.shows if sub and sub.shows else cmd.shows
    return found


def test_every_command_showing_patients_data_has_a_line_here():
    declared = patient_data_invocations()
    assert set(declared) == set(LINES), "a new command that shows patients' data needs its line in LINES"
    assert {n for n, shows in declared.items() if shows == "none"} == {n for n, line in LINES.items() if line is None}


async def _rooms(world: World) -> dict[str, str]:
    clinical = await world.open()
    pathway = await world.pathway(clinical)
    circle = world.m.add_room(members=(COORD,))
    await world.s.pathways.update(pathway.id, circle_room_id=circle)
    await world.add_document(clinical)
    await world.quarantine(CARDIO)
    await world.s.tasks.create(pathway.id, text_="Rappeler", actor=COORD, owner=COORD, due_at=1)   # overdue: !taches
    meeting = await world.s.rcp.plan(world.s.clock.now_ms() + 86_400_000, "salle 2", None, COORD)   # !rcp ordre…
    await world.s.rcp.enrol(meeting, pathway.id, "Adapter le traitement ?", COORD)
    return {"circle": circle, "desk": world.desk, "direct": world.direct(COORD),
            "coordination": await world.coordination_room(), "clinical": clinical}


@pytest.mark.parametrize("name", [n for n, line in LINES.items() if line is not None])
async def test_a_command_showing_patients_data_is_decided_for_the_room_it_answers_in(worlds, name):
    world = await worlds()
    rooms = await _rooms(world)
    code = (await world.pathway(rooms["clinical"])).code
    rcp = (await world.s.rcp.coming(world.s.clock.now_ms()))[0].code
    line = LINES[name].format(code=code, rcp=rcp)
    answered = []
    for kind, room in rooms.items():   # the clinical room last: a command that closes the pathway closes it last
        before = len(await world.s.trace.entries())
        reply = await world.say(COORD, line, room)
        shown = [e for e in (await world.s.trace.entries())[before:] if e.action.startswith("montrer")]
        if reply.text in NOT_HERE:
            assert not shown, (name, kind, "refused by its room, yet something was decided to be shown")
            continue
        answered.append(kind)
        assert shown, (name, kind, reply.text, "answered without a decision for this room")
        assert {e.rule for e in shown} <= RULES[kind], (name, kind, [e.rule for e in shown])
        assert all(e.subject == COORD for e in shown)
        if not any(e.allowed for e in shown):
            assert shown[-1].rule in reply.text, (name, kind, reply.text, "a refusal names its rule")
    assert answered, (name, "ran nowhere")
