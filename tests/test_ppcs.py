"""!ppcs on the fakes, at a fixed moment in Paris: the care plan's goals added as typed and reached, its referent
decided (refused for someone outside the room), tasks attached to a goal and shown under it, every change a new
version with its author, the plan pinned once then edited in place, the circle room shown only what it shares, and
closing the pathway closing the plan."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B import get_fhir_model_class

from liaison.clock import MovableClock
from tests.fakes import COORD, GP, NURSE, OUTSIDER, SOCIAL
from tests.test_subcommands import World, room_of, worlds  # noqa: F401 (the worlds fixture)

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def paris(worlds) -> World:
    return await worlds(clock=MovableClock(datetime(2027, 1, 8, 10, 0, tzinfo=PARIS).astimezone(timezone.utc)))


def plans(world: World, room: str) -> list:
    return [s for s in world.m.sent if s.room_id == room and "Plan personnalisé de coordination" in s.body]


def new_posts(world: World, room: str) -> list:
    return [s for s in plans(world, room) if "m.relates_to" not in s.content]


def edits(world: World, room: str) -> list:
    return [s for s in plans(world, room) if (s.content.get("m.relates_to") or {}).get("rel_type") == "m.replace"]


async def test_a_goal_is_kept_byte_for_byte_reached_and_versioned_with_its_author(paris):
    room = await paris.open()
    pathway = await paris.pathway(room)
    text = "Rester à domicile « le plus longtemps possible »\nl’aide du fils, \"sans\" hospitalisation"
    added = await paris.say(GP, f"!ppcs objectif {text}", room)
    assert added.text.startswith("Objectif n° 1 ajouté au plan (trace ") and added.text.endswith(f":\n{text}"), added.text
    [goal] = (await paris.s.care_plans.plan(pathway.id)).goals
    assert goal.text == text and goal.state == "en_cours"
    await paris.say(GP, "!ppcs objectif Marcher 10 minutes par jour", room)
    reached = await paris.say(COORD, "!ppcs objectif atteint 2", room)
    assert reached.text.startswith("Objectif n° 2 atteint (trace "), reached.text
    again = await paris.say(GP, "!ppcs atteint 2", room)
    assert again.text == "L'objectif n° 2 est atteint : rien n'a changé."
    plan = await paris.s.care_plans.plan(pathway.id)
    assert plan.version == 3 and plan.updated_by == COORD and plan.goals[1].reached_at is not None
    versions = await paris.s.care_plans.versions(pathway.id)
    assert [(v.version, v.actor, v.what, v.goal) for v in versions] == [
        (1, GP, "objectif", 1), (2, GP, "objectif", 2), (3, COORD, "atteint", 2)]
    shown = (await paris.say(GP, "!ppcs", room)).text
    assert f"Objectif n° 1 (en cours) : {text}" in shown and "Objectif n° 2 (atteint le 08/01/2027 10:00)" in shown
    assert "Version 3, du 08/01/2027 10:00 par Claire Morel" in shown, shown
    traced = [e for e in await paris.s.trace.entries() if e.rule.startswith("plan.")]
    assert [e.rule for e in traced] == ["plan.goal_added", "plan.goal_added", "plan.goal_reached"]
    assert all("Rester" not in e.subject and "Marcher" not in e.subject for e in traced), "numbers, never the text"


async def test_unknown_numbers_empty_or_too_long_texts_are_refused_and_nothing_is_stored(paris):
    room = await paris.open()
    pathway = await paris.pathway(room)
    before = await paris.traced()
    assert "Aucun objectif n° 4" in (await paris.say(GP, "!ppcs atteint 4", room)).text
    assert "Aucun objectif n° 4" in (await paris.say(GP, "!ppcs abandonner 4", room)).text
    long = await paris.say(GP, "!ppcs objectif " + "x" * 1001, room)
    assert long.text.startswith("Objectif non ajouté : un objectif tient en 1000 caractères"), long.text
    words = await paris.say(GP, "!ppcs mots " + "y" * 2001, room)
    assert words.text.startswith("Rien n'a été noté"), words.text
    assert "il manque : texte" in (await paris.say(GP, "!ppcs objectif", room)).text
    unknown = await paris.say(GP, "!tache Peser le patient objectif 3", room)
    assert unknown.text.startswith("Tâche non créée : aucun objectif n° 3 dans le plan de ce parcours"), unknown.text
    assert await paris.s.tasks.of_pathway(pathway.id) == []
    assert (await paris.s.care_plans.plan(pathway.id)).empty and await paris.traced() == before
    assert not plans(paris, room), "nothing pinned for an empty plan"


async def test_a_task_attached_to_a_goal_is_shown_under_it(paris):
    room = await paris.open()
    pathway = await paris.pathway(room)
    await paris.say(GP, "!ppcs objectif Stabiliser le poids", room)
    made = await paris.say(GP, "!tache Peser chaque lundi échéance demain objectif 1", room)
    assert "objectif n° 1" in made.text and made.text.endswith(":\nPeser chaque lundi"), made.text
    await paris.say(GP, "!tache Appeler la pharmacie objectif:1", room)
    await paris.say(GP, "!tache Sans objectif", room)
    assert [t.goal for t in await paris.s.tasks.of_pathway(pathway.id)] == [1, 1, None]
    await paris.say(GP, "!tache faite 2", room)
    shown = (await paris.say(GP, "!ppcs", room)).text
    assert "Objectif n° 1 (en cours) : Stabiliser le poids\n  · tâche n° 1 · Peser chaque lundi · à faire\n" \
           "  · tâche n° 2 · Appeler la pharmacie · faite" in shown, shown
    assert "Sans objectif" not in shown
    abandoned = await paris.say(GP, "!ppcs objectif abandonné n°1", room)
    assert abandoned.text.startswith("Objectif n° 1 abandonné (trace "), abandoned.text
    closed = await paris.say(GP, "!tache Bilan objectif 1", room)
    assert closed.text.startswith("Tâche non créée : l'objectif n° 1 est abandonné"), closed.text


async def test_the_referent_is_decided_and_must_be_in_the_room(paris):
    room = await paris.open(team="medecin,infirmier")
    pathway = await paris.pathway(room)
    await paris.s.pathways.set_member(pathway.id, NURSE, "left", "team.health")   # of the team, she left the room
    outsider = await paris.say(GP, f"!ppcs referent {OUTSIDER}", room)
    assert outsider.text.startswith("Référent non désigné") and "outside.no_consent" in outsider.text, outsider.text
    absent = await paris.say(GP, f"!ppcs referent {NURSE}", room)
    assert absent.text == ("Référent non désigné : Sophie Bernard (Infirmière) n'est pas membre du salon de ce "
                           f"parcours : invitez-le d'abord (!parcours inviter {NURSE})."), absent.text
    nobody = await paris.say(GP, "!ppcs referent @personne:hs", room)
    assert "n'existe pas" in nobody.text
    await paris.s.pathways.set_member(pathway.id, NURSE, "joined", "team.health")
    paris.m.accept(room, NURSE)
    named = await paris.say(GP, f"!ppcs referent {NURSE}", room)
    assert named.text.startswith("Référent du plan : Sophie Bernard (Infirmière) (trace "), named.text
    assert (await paris.s.care_plans.plan(pathway.id)).referent == NURSE
    words = "Je veux pouvoir aller au marché le samedi.\n« Pas d’hôpital »"
    noted = await paris.say(NURSE, f"!ppcs patient {words}", room)
    assert noted.text.endswith(f":\n{words}")
    shown = (await paris.say(GP, "!plan", room)).text
    assert "Référent : Sophie Bernard (Infirmière)" in shown and f"(mots du patient) :\n{words}" in shown, shown
    assert [e.rule for e in await paris.s.trace.entries() if e.rule.startswith("plan.")] == ["plan.referent",
                                                                                            "plan.words"]


async def test_the_plan_is_pinned_once_beside_the_summary_and_each_change_edits_it(paris):
    room = await paris.open()
    summary = (await paris.pathway(room)).summary_event_id
    await paris.say(GP, "!tache Bilan", room)   # the task board first
    await paris.say(GP, "!ppcs objectif Rester à domicile", room)
    [post] = new_posts(paris, room)
    board = (await paris.s.tasks.board((await paris.pathway(room)).id))[0]
    assert paris.m.state_now(room, "m.room.pinned_events") == {"pinned": [summary, board, post.event_id]}
    assert "Objectif n° 1 (en cours) : Rester à domicile" in post.body and "<ul>" in post.content["formatted_body"]
    sent = len(paris.m.sent)
    await paris.say(GP, "!ppcs mots Rester chez moi", room)
    assert len(paris.m.sent) == sent + 1, "a change of the plan costs one edit (the answer is not sent by ask)"
    sent = len(paris.m.sent)
    await paris.say(GP, "!tache Peser objectif 1", room)
    assert len(paris.m.sent) == sent + 2, "a task of a goal: one board edit, one plan edit"
    sent = len(paris.m.sent)
    await paris.say(GP, "!tache Appeler", room)
    assert len(paris.m.sent) == sent + 1, "a task of no goal leaves the plan alone"
    assert len(new_posts(paris, room)) == 1 and len(edits(paris, room)) == 2
    assert edits(paris, room)[-1].content["m.relates_to"]["event_id"] == post.event_id
    assert "tâche n° 2 · Peser · à faire" in edits(paris, room)[-1].content["m.new_content"]["body"]
    shown = [e for e in await paris.s.trace.entries() if e.action == "afficher le plan personnalisé"]
    assert len(shown) == 3 and all(e.rule == "room.clinical" for e in shown)
    reposted = await paris.s.plans.post_again(await paris.pathway(room), "salt")
    assert reposted != post.event_id and paris.m.state_now(room, "m.room.pinned_events")["pinned"][-1] == reposted


async def test_the_circle_room_sees_only_the_goals_of_the_categories_it_shares(paris):
    room = await paris.open()
    await paris.consent(room, SOCIAL, "écrit catégories:social")
    circle = room_of((await paris.say(COORD, f"!parcours inviter {SOCIAL}", room)).text)
    paris.m.accept(circle, SOCIAL)
    await paris.say(GP, "!ppcs objectif Adapter le traitement diurétique", room)
    await paris.say(GP, "!ppcs objectif Aide à domicile en place", room)
    await paris.say(GP, "!ppcs mots Je veux rester chez moi", room)
    await paris.say(GP, "!tache Adapter le furosémide objectif 1", room)
    empty = await paris.say(SOCIAL, "!ppcs", circle)
    assert "room.circle_category" in empty.text and "furosémide" not in empty.text, empty.text
    await paris.say(GP, "!tache Dossier APA catégorie social objectif 2", room)
    shown = (await paris.say(SOCIAL, "!ppcs", circle)).text
    assert "Objectif n° 2 (en cours) : Aide à domicile en place" in shown and "tâche n° 2 · Dossier APA" in shown
    assert "diurétique" not in shown and "furosémide" not in shown and "rester chez moi" not in shown, shown
    assert "Référent" not in shown and "Cercle élargi" in shown
    refused = await paris.say(SOCIAL, "!ppcs objectif Autre", circle)
    assert "Objectif n° 3" not in refused.text


async def test_closing_the_pathway_closes_the_plan_and_its_goals_in_progress(paris):
    room = await paris.open()
    pathway = await paris.pathway(room)
    await paris.say(GP, "!ppcs objectif Un", room)
    await paris.say(GP, "!ppcs objectif Deux", room)
    await paris.say(GP, "!ppcs atteint 1", room)
    closed = await paris.say(COORD, "!parcours clore fin de prise en charge", room)
    assert closed.text.endswith("Plan personnalisé clos, objectifs en cours clos : n° 2."), closed.text
    plan = await paris.s.care_plans.plan(pathway.id)
    assert plan.closed_at is not None and [g.state for g in plan.goals] == ["atteint", "clos"]
    assert "Plan clos le 08/01/2027" in edits(paris, room)[-1].content["m.new_content"]["body"]
    assert (await paris.s.care_plans.versions(pathway.id))[-1].what == "clos"


async def test_the_fhir_export_carries_the_goals_the_referent_and_the_patient_s_words(paris):
    room = await paris.open()
    pathway = await paris.pathway(room)
    await paris.say(GP, "!ppcs objectif Rester à domicile", room)
    await paris.say(GP, "!ppcs objectif Marcher", room)
    await paris.say(GP, "!ppcs objectif Perdre 2 kg", room)
    await paris.say(GP, "!ppcs atteint 2", room)
    await paris.say(GP, "!ppcs abandonner 3", room)
    await paris.say(GP, f"!ppcs referent {GP}", room)
    await paris.say(COORD, "!ppcs mots Je veux rester chez moi", room)
    await paris.say(GP, "!tache Peser objectif 1", room)
    reply = await paris.say(COORD, f"!parcours export {pathway.code}", await paris.coordination_room())
    assert "Goal 3" in reply.text, reply.text
    (_where, _name, _mime, data), = paris.m.files
    bundle = json.loads(data)
    get_fhir_model_class("Bundle").model_validate(bundle)
    found: dict[str, list[dict]] = {}
    for e in bundle["entry"]:
        get_fhir_model_class(e["resource"]["resourceType"]).model_validate(e["resource"])
        found.setdefault(e["resource"]["resourceType"], []).append(e["resource"] | {"fullUrl": e["fullUrl"]})
    goals = {g["description"]["text"]: g for g in found["Goal"]}
    assert goals["Rester à domicile"]["lifecycleStatus"] == "active"
    assert goals["Marcher"]["lifecycleStatus"] == "completed"
    assert goals["Marcher"]["achievementStatus"]["coding"][0]["code"] == "achieved"
    assert goals["Perdre 2 kg"]["lifecycleStatus"] == "cancelled" and "achievementStatus" not in goals["Perdre 2 kg"]
    [patient], [plan], [task] = found["Patient"], found["CarePlan"], found["Task"]
    assert all(g["subject"]["reference"] == patient["fullUrl"] for g in goals.values())
    assert [r["reference"] for r in plan["goal"]] == [goals[t]["fullUrl"] for t in ("Rester à domicile", "Marcher",
                                                                                     "Perdre 2 kg")]
    roles = {r["fullUrl"]: r for r in found["PractitionerRole"]}
    assert plan["author"]["reference"] in roles and len(plan["contributor"]) == 2
    assert plan["note"] == [{"authorReference": {"reference": patient["fullUrl"]}, "time": plan["note"][0]["time"],
                             "text": "Je veux rester chez moi"}]
    assert task["reasonReference"]["reference"] == goals["Rester à domicile"]["fullUrl"]


async def test_the_archive_carries_the_plan_and_its_versions_then_forgets_them(paris):
    from bot.archive import Archiver

    room = await paris.open()
    pathway = await paris.pathway(room)
    await paris.say(GP, "!ppcs objectif Rester à domicile\n« sans hospitalisation »", room)
    await paris.say(GP, f"!ppcs referent {GP}", room)
    await paris.say(GP, "!ppcs mots Rester chez moi", room)
    await paris.say(COORD, "!parcours clore fin de prise en charge", room)
    await paris.s.clock.advance(731 * 86_400)
    await Archiver(paris.s).archive(await paris.pathway(room))
    [archive] = [f for f in paris.m.files if f[1].startswith("archive-")]
    text = archive[3].decode()
    assert "Plan personnalisé de coordination (PPCS), version 4" in text, text
    assert f"Référent : {GP}" in text and "Ce qui compte pour moi (mots du patient) : Rester chez moi" in text
    assert "Objectif n° 1 (clos, ajouté le " in text and ": Rester à domicile\n« sans hospitalisation »" in text
    assert "objectif ajouté n° 1, par " in text and "plan clos avec le parcours, par " in text, text
    plan = await paris.s.care_plans.plan(pathway.id)
    assert plan.empty and plan.goals == () and await paris.s.care_plans.versions(pathway.id) == []


async def test_a_plan_left_behind_is_caught_up_at_start_and_a_new_device_gets_it_posted_again(paris):
    from bot.newcomers import Newcomers

    room = await paris.open()
    pathway = await paris.pathway(room)
    await paris.say(GP, "!ppcs objectif Rester à domicile", room)
    [first] = new_posts(paris, room)
    await paris.s.care_plans.add_goal(pathway.id, "Marcher", GP)   # stored, and the bot stopped before the edit
    assert await paris.s.care_plans.posts_behind() == [pathway.id]
    assert await paris.s.plans.catch_up() == 1 and await paris.s.care_plans.posts_behind() == []
    assert "Objectif n° 2 (en cours) : Marcher" in edits(paris, room)[-1].content["m.new_content"]["body"]
    paris.m.devices[GP].add("PHONE2")   # the GP logs in on a new phone
    assert await Newcomers(paris.s).check(room)
    old, again = new_posts(paris, room)
    assert old.event_id == first.event_id and "Marcher" in again.body
    pinned = paris.m.state_now(room, "m.room.pinned_events")["pinned"]
    assert pinned[0] == (await paris.pathway(room)).summary_event_id and again.event_id in pinned
    assert first.event_id not in pinned
