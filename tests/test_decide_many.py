"""A batch of decisions (`liaison.enforcement.decide_many`, what `!taches` in a direct conversation and the reminders
use) decides exactly what the same questions asked one by one (`decide_at`) decide, on the same facts: an objection,
a fact changed behind Liaison's back, a non-health professional, a consent, the circle room; and it traces one entry
per question, in order, together. On the fakes."""
from __future__ import annotations

from sqlalchemy import text

from bot.commands.tasks import LISTED_MAX
from liaison.enforcement import decide_at, decide_many
from liaison.sharing_facts import Question
from tests.bench.pathways import opening_command
from tests.fakes import BOT, COORD, GP, NURSE, OUTSIDER, SOCIAL
from tests.test_subcommands import World, room_of, worlds  # noqa: F401 (the worlds fixture)


async def _opened(world: World, i: int) -> tuple[str, object]:
    reply = await world.say(COORD, opening_command(30_000 + i, ["medecin", "infirmier"]))
    room = room_of(reply.text)
    for who in (COORD, GP, NURSE):
        world.m.accept(room, who)
    return room, await world.pathway(room)


async def _five_pathways(world: World, tasks_each: int = 0) -> list:
    """In order: a plain one; one where the patient objects to the nurse; one whose objection was lifted in the
    database behind Liaison's back (read as in force, and refused as tampered); one with the social worker's
    consent; another plain one. Before those facts, `tasks_each` tasks for the nurse in each."""
    opened = [await _opened(world, i) for i in range(5)]
    pathways = [p for _room, p in opened]
    for k, (room, _pathway) in enumerate(opened):
        for n in range(tasks_each):
            made = await world.say(GP, f"!tache Suivi {k}.{n} pour {NURSE} échéance dans {n + 1} jours", room)
            assert "créée" in made.text, made.text
    await world.s.consents.add_objection(pathways[1].patient_id, scope_kind="person", scope=NURSE, actor=COORD)
    await world.s.consents.add_objection(pathways[2].patient_id, scope_kind="person", scope=OUTSIDER, actor=COORD)
    async with world.s.pathways.engine.begin() as conn:
        await conn.execute(text("UPDATE objection SET lifted_at = 1, lifted_by = :c WHERE patient_id = :p"),
                           {"c": COORD, "p": pathways[2].patient_id})
    await world.consent(opened[3][0], SOCIAL)
    return pathways


def _same(decided) -> list[tuple]:
    return [(d.allowed, d.decision.rule, d.decision.reason, d.decision.basis) for d in decided]


async def test_a_batch_refuses_exactly_what_single_decisions_refuse_and_traces_each(worlds):
    world = await worlds()
    pathways = await _five_pathways(world)
    sharing = world.s.sharing
    questions = [Question(p, who, category, kind, frozenset({"social"}) if kind == "circle" else frozenset())
                 for p in pathways for who in (NURSE, GP, SOCIAL, COORD, OUTSIDER)
                 for category in ("soins", "social") for kind in ("direct", "clinical", "circle")]
    for path, actor in (("command.show", NURSE), ("task.remind", BOT), ("task.assign", GP)):
        before = len(await sharing.trace.entries())
        batch = await decide_many(sharing, path, questions, actor=actor)
        entries = (await sharing.trace.entries())[before:]
        single = [await decide_at(sharing, path, pathway=q.pathway, recipient=q.user_id, actor=actor,
                                  data_category=q.data_category, room_kind=q.room_kind,
                                  circle_categories=q.circle_categories) for q in questions]
        assert _same(batch) == _same(single), path
        assert [(e.subject, e.pathway_id, e.data_category, e.allowed, e.rule) for e in entries] == [
            (q.user_id, q.pathway.id, q.data_category, d.allowed, d.decision.rule)
            for q, d in zip(questions, batch, strict=True)]
        assert [d.trace for d in batch] == [e.seq for e in entries]
        assert len({e.at for e in entries}) == 1, "written together"
    assert (await sharing.trace.verify()).ok
    rules = {d.decision.rule for d in await decide_many(sharing, "command.show", questions, actor=NURSE)}
    assert {"objection.person", "facts.tampered", "room.direct", "room.circle_category",
            "non_health.category_not_allowed"} <= rules, rules


async def test_a_tampered_roster_row_refuses_that_reader_only(worlds):
    world = await worlds()
    pathways = await _five_pathways(world)
    async with world.s.pathways.engine.begin() as conn:   # the GP's row changed behind Liaison's back
        await conn.execute(text("UPDATE roster_member SET structure = 'ailleurs' WHERE user_id = :u"), {"u": GP})
    questions = [Question(p, who) for p in pathways for who in (NURSE, GP)]
    batch = await decide_many(world.s.sharing, "task.remind", questions, actor=BOT)
    single = [await decide_at(world.s.sharing, "task.remind", pathway=q.pathway, recipient=q.user_id, actor=BOT)
              for q in questions]
    assert _same(batch) == _same(single)
    assert [d.decision.rule == "facts.tampered" for d in batch] == [q.user_id == GP or q.pathway == pathways[2]
                                                                    for q in questions]


async def test_my_tasks_decide_each_pathway_shown_once_and_hide_the_refused(worlds):
    world = await worlds()
    pathways = await _five_pathways(world, tasks_each=3)
    direct = world.direct(NURSE)
    before = len(await world.s.trace.entries())
    reply = await world.say(NURSE, "!taches", direct)
    shown = [e for e in (await world.s.trace.entries())[before:] if e.pathway_id is not None]
    assert [(e.pathway_id, e.subject, e.action) for e in shown] == [(p.id, NURSE, "montrer") for p in pathways], \
        "one decision per pathway, in the order of the nearest tasks"
    assert [e.allowed for e in shown] == [True, False, False, True, True]
    assert reply.text.startswith("Vos tâches (9) :") and "6 autre(s) tâche(s) non montrée(s)" in reply.text
    for p, allowed in zip(pathways, [True, False, False, True, True], strict=True):
        assert (p.code in reply.text) is allowed


async def test_my_tasks_beyond_the_list_are_not_decided(worlds):
    world = await worlds()
    room, pathway = await _opened(world, 0)
    other_room, other = await _opened(world, 1)
    for n in range(LISTED_MAX):
        await world.say(GP, f"!tache Suivi {n} pour {NURSE} échéance dans {n + 1} jours", room)
    await world.say(GP, f"!tache Plus loin pour {NURSE} échéance dans {LISTED_MAX + 5} jours", other_room)
    before = len(await world.s.trace.entries())
    reply = await world.say(NURSE, "!taches", world.direct(NURSE))
    shown = [e.pathway_id for e in (await world.s.trace.entries())[before:] if e.pathway_id is not None]
    assert shown == [pathway.id], "the 41st task's pathway is not shown: not decided"
    assert "et 1 autre(s) plus loin" in reply.text and other.code not in reply.text


async def test_my_tasks_read_further_when_the_nearest_are_all_hidden(worlds):
    world = await worlds()
    room, hiding = await _opened(world, 0)
    other_room, other = await _opened(world, 1)
    for n in range(2 * LISTED_MAX + 5):   # more than the first reading holds
        await world.say(GP, f"!tache Proche {n} pour {NURSE} échéance dans {n + 1} heures", room)
    for n in range(3):
        await world.say(GP, f"!tache Loin {n} pour {NURSE} échéance dans {n + 20} jours", other_room)
    await world.s.consents.add_objection(hiding.patient_id, scope_kind="person", scope=NURSE, actor=COORD)
    before = len(await world.s.trace.entries())
    reply = await world.say(NURSE, "!taches", world.direct(NURSE))
    decided = [(e.pathway_id, e.allowed) for e in (await world.s.trace.entries())[before:] if e.pathway_id]
    assert decided == [(hiding.id, False), (other.id, True)]
    assert reply.text.startswith("Vos tâches (3) :") and f"{2 * LISTED_MAX + 5} autre(s) tâche(s) non montrée(s)" \
        in reply.text, reply.text
    assert hiding.code not in reply.text and other.code in reply.text
