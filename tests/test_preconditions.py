"""Declared preconditions: where a command runs (`room=`), whether it needs an open pathway (`open=True`), checked
by the bot before the handler, which receives the pathway found; and one parse per synced message."""
from __future__ import annotations

from datetime import date

import pytest

from bot.app import Bot, BotSettings
from bot.parsing import Registry
from bot.registry import CLOSED, ROOMS, Context, Reply, command, group
from bot.rooms import CIRCLE_NO_CHANGE
from bot.store import BotStore
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.matrix import SyncBatch, TextMessage
from tests.fakes import COORD, GP, ask, close_services, make_services


def _where(name: str, room, **kw):
    @command(name, en=f"{name}-en", help="x", room=room, **kw)
    async def handler(ctx: Context) -> Reply:
        return Reply.plain(f"ici : {ctx.pathway.code if ctx.pathway else '-'}")
    return handler


places = group("lieu", en="place", help="x", room="pathway")


@places.sub("clinique", en="clinical", help="x")
async def _clinical(ctx: Context) -> Reply:
    return Reply.plain(f"ici : {ctx.pathway.code}")


@places.sub("partout", en="anywhere", help="x", room="any")
async def _anywhere(ctx: Context) -> Reply:
    return Reply.plain(f"ici : {ctx.pathway}")


REGISTRY = Registry.of([_where("soin", "pathway"), _where("cercle", "circle"), _where("coord", "coordination"),
                        _where("prive", "direct"), _where("deux", ("pathway", "circle")),
                        _where("ouvert", "pathway", open=True), places])


@pytest.fixture
async def rooms(tmp_path):
    """A pathway (clinical and circle rooms), the coordination's room, a direct chat and a desk of three."""
    s = await make_services(tmp_path)
    m = s.matrix
    patient = await s.pathways.add_patient(ins="248057512345699", oid="x", birth_name="Petit", first_names="Anne",
                                           birth_date=date(1948, 5, 1), sex="F", actor=COORD)
    pathway = await s.pathways.add_pathway(patient_id=patient.id, type_key="autre", code="P-ICI", actor=COORD)
    found = dict(clinical=m.add_room(members=(COORD, GP)), circle=m.add_room(members=(COORD, GP)),
                 coordination=m.add_room(members=(COORD, GP)), direct=m.add_room(members=(COORD,)),
                 desk=m.add_room(members=(COORD, GP)))
    await s.pathways.update(pathway.id, room_id=found["clinical"], circle_room_id=found["circle"], status="open")
    await s.mail.set_setting(QUARANTINE_ROOM, found["coordination"])
    yield s, found, pathway.id
    await close_services(s)


# What each command answers in each room: its pathway's code where it runs, else the one sentence of its kind.
EXPECTED = {
    "soin": dict(clinical="ici : P-ICI", circle=CIRCLE_NO_CHANGE, coordination=ROOMS["pathway"],
                 direct=ROOMS["pathway"], desk=ROOMS["pathway"]),
    "cercle": dict(clinical=ROOMS["circle"], circle="ici : P-ICI", coordination=ROOMS["circle"],
                   direct=ROOMS["circle"], desk=ROOMS["circle"]),
    "coord": dict(clinical=ROOMS["coordination"], circle=ROOMS["coordination"], coordination="ici : -",
                  direct=ROOMS["coordination"], desk=ROOMS["coordination"]),
    "prive": dict(clinical=ROOMS["direct"], circle=ROOMS["direct"], coordination=ROOMS["direct"],
                  direct="ici : -", desk=ROOMS["direct"]),
    "deux": dict(clinical="ici : P-ICI", circle="ici : P-ICI", desk=ROOMS["pathway"]),
    "lieu clinique": dict(clinical="ici : P-ICI", circle=CIRCLE_NO_CHANGE, desk=ROOMS["pathway"]),
    "lieu partout": dict(clinical="ici : None", desk="ici : None"),
}


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_a_command_runs_only_in_the_room_it_declares_with_one_sentence_elsewhere(rooms, name):
    s, found, _ = rooms
    for where, expected in EXPECTED[name].items():
        assert (await ask(s, REGISTRY, COORD, found[where], f"!{name}")).text == expected, (name, where)


async def test_a_command_that_needs_an_open_pathway_is_refused_in_a_closed_one(rooms):
    s, found, pathway_id = rooms
    assert (await ask(s, REGISTRY, COORD, found["clinical"], "!ouvert")).text == "ici : P-ICI"
    await s.pathways.update(pathway_id, status="closed")
    assert (await ask(s, REGISTRY, COORD, found["clinical"], "!ouvert")).text == CLOSED
    assert (await ask(s, REGISTRY, COORD, found["clinical"], "!soin")).text == "ici : P-ICI", "no need to be open"


async def test_the_room_is_checked_before_the_arguments(rooms):
    s, found, _ = rooms
    from bot.commands import build_registry

    reply = await ask(s, build_registry(), COORD, found["desk"], "!parcours resume allergies x")
    assert reply.text == ROOMS["pathway"], "what is wrong with the arguments does not matter in the wrong room"


def test_a_room_kind_that_does_not_exist_is_refused_when_declared():
    with pytest.raises(ValueError):
        _where("nulle-part", "salon")
    with pytest.raises(ValueError):
        group("g", en="g", help="x").sub("s", en="s", help="x", room=())(_clinical)


async def test_each_synced_message_is_parsed_once(rooms):
    s, found, _ = rooms
    calls: list[str] = []

    class Counting(Registry):
        def parse(self, body: str):
            calls.append(body)
            return super().parse(body)

    bot = Bot(s.matrix, BotStore(s.pathways.engine), Counting(REGISTRY.commands), BotSettings("", frozenset()), s)
    messages = [TextMessage(found["clinical"], f"$m{i}", COORD, body, True)
                for i, body in enumerate(["!soin", "bonjour", "!cercle"])]
    await bot._take(SyncBatch("s1", messages=messages), "@liaison:hs", False, False)
    await bot.drain()
    assert sorted(calls) == sorted(["!soin", "bonjour", "!cercle"]), "one parse per message, none when answering"
    answers = [m.body for m in s.matrix.sent if m.room_id == found["clinical"]]
    assert sorted(answers) == sorted(["ici : P-ICI", ROOMS["circle"]])


@pytest.mark.parametrize("line", ["!parcours liste", "!mss quarantaine", "!parcours types", "!trace"])
async def test_a_command_showing_patients_data_never_answers_in_a_circle_room(rooms, line):
    """The circle room's non-health members see nothing clinical (CSP R.1110-2), whatever room a command declares:
    « any room » still means any room but a circle (issue 24, item 3)."""
    s, found, _ = rooms
    from bot.commands import build_registry

    in_circle = (await ask(s, build_registry(), COORD, found["circle"], line)).text
    assert in_circle in (CIRCLE_NO_CHANGE, ROOMS["direct"], ROOMS["coordination"]), in_circle
    elsewhere = await ask(s, build_registry(), COORD, found["desk"], line)
    assert elsewhere.text != CIRCLE_NO_CHANGE


async def test_a_command_for_any_room_that_shows_no_patient_data_answers_in_the_circle_room_too(rooms):
    s, found, _ = rooms
    from bot.commands import build_registry

    assert "!aide" in (await ask(s, build_registry(), COORD, found["circle"], "!aide")).text
