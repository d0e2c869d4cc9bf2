"""After any sequence of changes of fact, typed as people type them, nobody is in a patient's room whom the decision
point would now refuse (issue 24, item 1): consents recorded, withdrawn or come to their end, objections recorded and
lifted, a member who leaves the team or comes back, invitations. On the fakes, with a movable clock; the invariant
is checked after every step, against `room.keep` decided afresh (nothing traced by the check itself)."""
from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.expiries import ConsentExpiries
from liaison.clock import MovableClock
from liaison.sharing_facts import decide_for
from policies.sharing import Action
from tests.fakes import COORD, GP, NURSE, OUTSIDER, close_services, make_services
from tests.test_subcommands import World

START = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
STEPS = {
    "consent": f"!consentement enregistrer {OUTSIDER} écrit",
    "consent_short": f"!consentement enregistrer {OUTSIDER} écrit jusqu'au 05/01/2027",
    "withdraw": f"!consentement retirer {OUTSIDER}",
    "object_nurse": f"!opposition {NURSE}",
    "lift_nurse": f"!opposition lever {NURSE}",
    "object_outsider": f"!opposition {OUTSIDER}",
    "lift_outsider": f"!opposition lever {OUTSIDER}",
    "invite_outsider": f"!parcours inviter {OUTSIDER}",
    "invite_nurse": f"!parcours inviter {NURSE}",
}
DESK_STEPS = {
    "nurse_leaves_team": f"!equipe retirer {NURSE}",
    "nurse_comes_back": f"!equipe ajouter {NURSE} infirmière",
}
OPS = st.lists(st.sampled_from([*STEPS, *DESK_STEPS, "two_days_pass"]), min_size=1, max_size=12)


async def _refused_present(world: World, room: str) -> list[tuple[str, str]]:
    """Who is in the room (joined or invited) and yet refused by the decision point now."""
    pathway = await world.pathway(room)
    bot, bridge = world.s.settings.bot_user_id, world.s.settings.bridge_user_id
    refused = []
    for user_id, state in world.m.room(room).membership.items():
        if state not in ("join", "invite") or user_id in (bot, bridge):
            continue
        decision = await decide_for(world.s.sharing, pathway=pathway, user_id=user_id, actor=COORD,
                                    action=Action.JOIN)
        if not decision.allowed:
            refused.append((user_id, decision.rule))
    return refused


async def _run(ops: list[str], folder: Path) -> None:
    clock = MovableClock(START)
    services = await make_services(folder, clock=clock)
    try:
        world = World(services)
        room = await world.open(team="medecin,infirmier")
        world.m.accept(room, NURSE)
        expiries = ConsentExpiries(services)
        for n, op in enumerate(ops):
            if op == "two_days_pass":
                await clock.advance(2 * 86_400)
                await expiries.run_once()   # the bot's job, as its lifecycle runs it
            elif op in DESK_STEPS:
                await world.say(COORD, DESK_STEPS[op])
            else:
                await world.say(COORD, STEPS[op], room)
                for user_id in (OUTSIDER, NURSE):   # an invitation is accepted at once
                    if world.m.room(room).membership.get(user_id) == "invite":
                        world.m.accept(room, user_id)
            refused = await _refused_present(world, room)
            assert not refused, f"after {ops[:n + 1]}: present and refused: {refused}"
        assert world.m.room(room).membership[GP] == "join", "the GP's place never depended on these facts"
    finally:
        await close_services(services)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
@example(ops=["consent_short", "invite_outsider", "two_days_pass"])     # a consent's end
@example(ops=["nurse_leaves_team"])                                      # a member leaves the structure
@example(ops=["consent", "invite_outsider", "withdraw"])
@example(ops=["consent", "invite_outsider", "object_outsider", "lift_outsider", "invite_outsider"])
def test_after_every_change_of_fact_nobody_present_is_refused(ops):
    with tempfile.TemporaryDirectory(prefix="liaison-facts-") as folder:
        asyncio.run(_run(ops, Path(folder)))
