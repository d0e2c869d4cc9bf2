"""A consent « jusqu'au … » ends on its day: when the bot's clock passes it, whoever that consent alone let into
the patient's rooms is removed, once, and also at the first pass after a restart past its time (issue 24, item 1).
On the fakes, with a movable clock: no real wait."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.expiries import ConsentExpiries
from liaison.clock import MovableClock
from tests.fakes import COORD, OUTSIDER, close_services, make_services
from tests.test_subcommands import World

START = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
async def world(tmp_path):
    clock = MovableClock(START)
    services = await make_services(tmp_path, clock=clock)
    yield World(services), clock
    await close_services(services)


async def _consented_and_in(world: World, until: str) -> str:
    room = await world.open()
    reply = await world.say(COORD, f"!consentement enregistrer {OUTSIDER} écrit jusqu'au {until}", room)
    assert reply.text.startswith("Consentement écrit enregistré"), reply.text
    await world.say(COORD, f"!parcours inviter {OUTSIDER}", room)
    world.m.accept(room, OUTSIDER)
    return room


async def test_the_holder_of_an_expired_consent_is_removed_once_when_the_day_has_passed(world):
    world, clock = world
    room = await _consented_and_in(world, "10/01/2027")
    expiries = ConsentExpiries(world.s)
    assert await expiries.run_once() == 0
    await clock.advance(to=datetime(2027, 1, 10, 23, 0, tzinfo=timezone.utc))
    assert await expiries.run_once() == 0, "still in force on its last day"
    assert world.m.room(room).membership[OUTSIDER] == "join"

    await clock.advance(to=datetime(2027, 1, 11, 0, 1, tzinfo=timezone.utc))
    assert await expiries.run_once() == 1
    assert world.m.room(room).membership[OUTSIDER] == "leave"
    assert world.m.kicked[-1] == (room, OUTSIDER, "Consentement arrivé à échéance (règle outside.no_consent)")
    told = [b for b in world.m.bodies(room) if "a été retiré(e) du salon" in b]
    assert len(told) == 1 and "outside.no_consent" in told[0]
    assert await expiries.run_once() == 0, "applied once"
    assert len(world.m.kicked) == 1


async def test_an_expiry_passed_while_the_bot_was_down_is_applied_at_the_first_pass_after(world):
    world, clock = world
    room = await _consented_and_in(world, "10/01/2027")
    await clock.advance(30 * 86_400)   # the bot was stopped: nothing ran
    assert world.m.room(room).membership[OUTSIDER] == "join"
    assert await ConsentExpiries(world.s).run_once() == 1   # a new process, a new job
    assert world.m.room(room).membership[OUTSIDER] == "leave"
    assert await ConsentExpiries(world.s).run_once() == 0


async def test_a_withdrawn_consent_or_one_still_running_is_left_alone(world):
    world, clock = world
    room = await _consented_and_in(world, "10/01/2027")
    await world.say(COORD, f"!consentement retirer {OUTSIDER}", room)
    kicked = len(world.m.kicked)
    await world.say(COORD, f"!consentement enregistrer {OUTSIDER} écrit jusqu'au 31/12/2099", room)
    await world.say(COORD, f"!parcours inviter {OUTSIDER}", room)
    world.m.accept(room, OUTSIDER)
    await clock.advance(to=datetime(2027, 1, 12, tzinfo=timezone.utc))
    assert await ConsentExpiries(world.s).run_once() == 0, "withdrawn: applied when it was withdrawn"
    assert len(world.m.kicked) == kicked and world.m.room(room).membership[OUTSIDER] == "join"
