"""`!ppcs`: the patient's care plan (« plan personnalisé de coordination en santé »), one per pathway: its goals
(numbered, the text as typed), the tasks attached to each (`!tache … objectif <n>`), its referent and the patient's
own words, « ce qui compte pour moi ». Every change is a new version of the plan (who, when, what), traced, and edits
the plan pinned in the clinical room (bot/care_plan_post.py).

Where it is shown. Each showing is decided (`ppcs.show`) for the room it is read in, for each category of the tasks
it would show. A goal has no category of its own: the stricter choice is made, so in the circle room a goal is shown
only when at least one of its tasks is of a category that room shares (and only those tasks); the referent and the
patient's words are shown only where care information (« soins ») may be, never in the circle room.
"""
from __future__ import annotations

import re
from typing import Protocol

from bot.arguments import count, matrix_id
from bot.care_plan_post import CarePlanPost, render
from bot.members import PeoplePorts, person
from bot.registry import Arg, Audience, Context, Reply, fold, group
from bot.rooms import ShowPorts, circle_categories, room_kind
from liaison.clock import Clock
from liaison.enforcement import Decided, decide_at
from liaison.sharing_facts import ACTIVE
from liaison.stores.care_plan import GOAL_STATES, MAX_GOAL, MAX_WORDS, CarePlanStore, Goal
from liaison.stores.tasks import TaskStore


class CarePlanPorts(ShowPorts, PeoplePorts, Protocol):
    """What `!ppcs` reads and changes: the plan, its tasks, the pinned plan, the clock, who is who and the sharing
    decision (ShowPorts)."""
    @property
    def care_plans(self) -> CarePlanStore: ...
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def plans(self) -> CarePlanPost: ...
    @property
    def clock(self) -> Clock: ...


ppcs = group("ppcs", en="careplan", aliases=["plan"], patient_data=True, who=Audience.STAFF, room="pathway",
             open=True, default="voir",
             help="Le plan personnalisé de coordination en santé (PPCS) du patient : objectifs, référent, ce qui "
                  "compte pour lui (!aide ppcs pour le détail).")

_SHORTCUT = re.compile(r"(atteint|abandonne)\s+(?:n°\s*|#)?(\d+)")   # « !ppcs objectif atteint 2 »


@ppcs.sub("voir", en="show", aliases=["afficher"], room=("pathway", "circle"), shows="items",
          help="Le plan : référent, ce qui compte pour le patient, chaque objectif avec son état et ses tâches ; au "
               "cercle élargi, seulement les objectifs et tâches des catégories qu'il partage.")
async def _show(ctx: Context[CarePlanPorts]) -> Reply:
    pathway = ctx.room_pathway
    plan = await ctx.services.care_plans.plan(pathway.id)
    tasks = [t for t in await ctx.services.tasks.of_pathway(pathway.id) if t.goal is not None]
    kind = room_kind(pathway, ctx.room_id)
    circle = await circle_categories(ctx.services, pathway) if kind == "circle" else frozenset()
    decided: dict[str, Decided] = {}
    for category in dict.fromkeys(["soins", *(t.category for t in tasks)]):
        decided[category] = await decide_at(ctx.services.sharing, "ppcs.show", pathway=pathway, recipient=ctx.sender,
                                            actor=ctx.sender, room_kind=kind, circle_categories=circle,
                                            data_category=category)
    if not any(d.allowed for d in decided.values()):
        return Reply.plain(f"!ppcs ne répond pas dans ce salon : {next(reversed(decided.values())).sentence()}.")
    whole = decided["soins"].allowed
    shown = [t for t in tasks if decided[t.category].allowed]
    goals = plan.goals if whole else tuple(g for g in plan.goals if any(t.goal == g.number for t in shown))
    text, html = await render(ctx.services, pathway.code, plan, goals, shown, whole=whole)
    if not whole:
        note = ("Cercle élargi : seuls les objectifs dont une tâche est d'une catégorie partagée ici sont montrés, "
                "avec ces tâches ; ni le référent ni les mots du patient.")
        text, html = f"{text}\n{note}", f"{html}<p><small>{note}</small></p>"
    return Reply(text, html)


@ppcs.sub("objectif", en="goal", aliases=["ajouter"],
          args=[Arg("texte", "l'objectif, tel que vous l'écrivez (ou : atteint <n>, abandonne <n>)", rest=True)],
          help="Ajoute un objectif au plan, tel que vous l'écrivez ; « !ppcs objectif atteint 2 » le marque atteint.")
async def _goal(ctx: Context[CarePlanPorts]) -> Reply:
    raw = ctx.args["texte"]
    shortcut = _SHORTCUT.fullmatch(fold(raw))
    if shortcut:
        return await _settle(ctx, int(shortcut.group(2)), shortcut.group(1))
    if not raw.strip():
        return Reply.plain("Objectif non ajouté : écrivez son texte (!ppcs objectif <texte>).")
    if len(raw) > MAX_GOAL:
        return Reply.plain(f"Objectif non ajouté : un objectif tient en {MAX_GOAL} caractères ({len(raw)} ici).")
    pathway = ctx.room_pathway
    goal, ref = await ctx.services.care_plans.add_goal(pathway.id, raw, ctx.sender)
    await ctx.services.plans.changed(pathway)
    return Reply.plain(f"Objectif n° {goal.number} ajouté au plan (trace {ref} ; rattachez-lui une tâche : !tache … "
                       f"objectif {goal.number}) :\n{goal.text}")


@ppcs.sub("atteint", en="reached", aliases=["atteindre"], args=[Arg("n", "le numéro de l'objectif", parse=count)],
          help="Marque un objectif du plan comme atteint.")
async def _reached(ctx: Context[CarePlanPorts]) -> Reply:
    return await _settle(ctx, ctx.args["n"], "atteint")


@ppcs.sub("abandonner", en="abandon", aliases=["abandonne"], args=[Arg("n", "le numéro de l'objectif", parse=count)],
          help="Abandonne un objectif du plan (il reste dans le plan et son historique).")
async def _abandoned(ctx: Context[CarePlanPorts]) -> Reply:
    return await _settle(ctx, ctx.args["n"], "abandonne")


@ppcs.sub("referent", en="lead", args=[Arg("compte", "@nom:serveur", parse=matrix_id)],
          help="Désigne le référent du plan, un membre de l'équipe de soins du patient.")
async def _referent(ctx: Context[CarePlanPorts]) -> Reply:
    pathway, referent = ctx.room_pathway, ctx.args["compte"]
    if await ctx.services.matrix.display_name(referent) is None:   # before deciding: nothing traced for no one
        return Reply.plain(f"Référent non désigné : le compte {referent} n'existe pas : vérifiez l'identifiant.")
    decided = await decide_at(ctx.services.sharing, "ppcs.referent", pathway=pathway, recipient=referent,
                              actor=ctx.sender, data_category="soins")
    if not decided.allowed:
        return Reply.plain(f"Référent non désigné : {decided.sentence()}.")
    who = (await person(ctx.services, referent)).text()
    members = await ctx.services.pathways.members(pathway.id)
    if referent not in [user_id for user_id, state, _rule in members if state in ACTIVE]:
        return Reply.plain(f"Référent non désigné : {who} n'est pas membre du salon de ce parcours : invitez-le "
                           f"d'abord (!parcours inviter {referent}).")
    ref = await ctx.services.care_plans.set_referent(pathway.id, referent, ctx.sender)
    await ctx.services.plans.changed(pathway)
    return Reply.plain(f"Référent du plan : {who} (trace {ref}).")


@ppcs.sub("mots", en="words", aliases=["patient"],
          args=[Arg("texte", "ce qui compte pour le patient, avec ses mots, tel que vous l'écrivez", rest=True)],
          help="Note ce qui compte pour le patient, avec ses propres mots (« ce qui compte pour moi »).")
async def _words(ctx: Context[CarePlanPorts]) -> Reply:
    raw = ctx.args["texte"]
    if not raw.strip():
        return Reply.plain("Rien n'a été noté : écrivez les mots du patient (!ppcs mots <texte>).")
    if len(raw) > MAX_WORDS:
        return Reply.plain(f"Rien n'a été noté : les mots du patient tiennent en {MAX_WORDS} caractères "
                           f"({len(raw)} ici).")
    pathway = ctx.room_pathway
    ref = await ctx.services.care_plans.set_words(pathway.id, raw, ctx.sender)
    await ctx.services.plans.changed(pathway)
    return Reply.plain(f"Ce qui compte pour le patient, noté dans son plan (trace {ref}) :\n{raw}")


async def _settle(ctx: Context[CarePlanPorts], number: int, state: str) -> Reply:
    """Goal `number` reached or abandoned; or the French answer that nothing changes."""
    pathway = ctx.room_pathway
    goal: Goal | None = await ctx.services.care_plans.goal(pathway.id, number)
    if goal is None:
        return Reply.plain(f"Aucun objectif n° {number} dans le plan de ce parcours (!ppcs pour le plan) : rien n'a "
                           "changé.")
    store = ctx.services.care_plans
    changed = await (store.reach(goal, ctx.sender) if state == "atteint" else store.abandon(goal, ctx.sender))
    if changed is None:
        now = await store.goal(pathway.id, number)
        return Reply.plain(f"L'objectif n° {number} est {GOAL_STATES[now.state if now else goal.state]} : rien n'a "
                           "changé.")
    await ctx.services.plans.changed(pathway)
    return Reply.plain(f"Objectif n° {number} {GOAL_STATES[state]} (trace {changed[1]}).")


ALL = [ppcs]
