"""`!tache` and `!taches`: the tasks of a pathway, for one member of its team or requested of a profession.

The line of a new task: the text as typed, then, at its end and in any order, `pour @compte` or `pour <profession>`
(who it is for; without it, for whoever typed it), `échéance <quand>` (bot/task_dates.py: « demain », « dans 3
jours », « lundi 14h », « le 12/01 », « chaque semaine »), `catégorie soins|social|administratif` and `objectif <n>`
(the goal of the patient's care plan it serves, bot/commands/ppcs.py). A « pour » followed by neither an account nor
a profession, an « objectif » followed by no number, stay in the text.

Whoever a task goes to is decided (`task.assign`, the same rules as staying in the clinical room, for the task's
category) when it is created, taken or handed over; a request to a profession is decided for each member of that
profession in the pathway, and the first who takes it owns it. `!taches` lists one pathway's tasks in its room,
« my » tasks across pathways in a direct conversation (each pathway decided for that room), the overdue tasks by
pathway code and profession, no name nor text, in the coordination's room.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.arguments import count, matrix_id
from bot.care_plan_post import CarePlanPost
from bot.circle import CIRCLE_STATE
from bot.members import PeoplePorts, person
from bot.registry import Arg, Audience, Context, Reply, command, group
from bot.reply import room_link
from bot.rooms import ShowPorts, may_show, may_show_many
from bot.task_board import TaskBoard
from bot.task_dates import EXAMPLES, next_due, read_due, recurrence_label, shown
from bot.task_line import example, read_line
from bot.task_text import by_due, due_text, first_line, plural, singular
from liaison.clock import Clock
from liaison.enforcement import Decided, decide_at
from liaison.sharing_facts import ACTIVE
from liaison.stores.pathways import Pathway
from liaison.stores.care_plan import GOAL_STATES, CarePlanStore
from liaison.stores.tasks import COORDINATION, STATES, Draft, Task, TaskStore, UnknownGoal


class TaskPorts(ShowPorts, PeoplePorts, Protocol):
    """What `!tache` reads and changes: the tasks, the clock, who is who (roster, homeserver), what a room may
    show and the sharing decision (ShowPorts)."""
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def boards(self) -> TaskBoard: ...
    @property
    def care_plans(self) -> CarePlanStore: ...
    @property
    def plans(self) -> CarePlanPost: ...


tache = group("tache", en="task", patient_data=True, who=Audience.STAFF, room="pathway", open=True,
              default="nouvelle", help="Les tâches du parcours : créer, prendre, faite, reporter, confier, annuler "
                                       "(!aide tache pour le détail).")

_LISTED_DONE = 5
LISTED_MAX = 40   # lines of a list of tasks: one event holds them, a person reads them


@tache.sub("nouvelle", en="new", aliases=["creer", "ajouter"],
           args=[Arg("texte", "le texte, tel que vous l'écrivez ; à la fin, au choix et dans n'importe quel ordre : "
                              "pour @compte ou pour <profession>, échéance <quand> (demain, dans 3 jours, lundi 14h, "
                              "le 12/01, chaque semaine), catégorie soins|social|administratif, objectif <n> (du "
                              "plan personnalisé, !ppcs)", rest=True)],
           help="Crée une tâche du parcours, pour un membre de l'équipe de soins ou demandée à une profession.")
async def _new(ctx: Context[TaskPorts]) -> Reply:
    pathway = ctx.room_pathway
    checked = await checked_draft(ctx, pathway, ctx.args["texte"])
    if isinstance(checked, str):
        return Reply.plain(f"Tâche non créée : {checked}")
    d, for_whom, owner = checked.draft, checked.for_whom, checked.draft.owner
    try:
        task, ref = await ctx.services.tasks.create(pathway.id, text_=d.text, actor=ctx.sender, category=d.category,
                                                    owner=d.owner, profession=d.profession, due_at=d.due_at,
                                                    recurrence=d.recurrence, goal=d.goal)
    except UnknownGoal as err:
        return Reply.plain(f"Tâche non créée : aucun objectif n° {err.number} dans le plan de ce parcours (!ppcs).")
    react = "✋ sur ce message pour la prendre, ✅ quand elle est faite" if owner is None else \
        "✅ sur ce message quand elle est faite"
    goal = f" ; objectif n° {task.goal}" if task.goal is not None else ""
    return await _told(ctx, task, f"Tâche n° {task.number} créée, {for_whom} — {due_text(task)} ; {task.category}"
                                  f"{goal} (trace {ref} ; {react}) :\n{task.text}")


@tache.sub("prendre", en="take", args=[Arg("n", "le numéro de la tâche", parse=count)],
           help="Prend en charge une tâche : la première personne qui prend une demande à sa profession en devient "
                "responsable.")
async def _take(ctx: Context[TaskPorts]) -> Reply:
    task = await _open_task(ctx)
    if isinstance(task, Reply):
        return task
    if task.owner is not None and task.owner != ctx.sender:
        return Reply.plain(f"La tâche n° {task.number} est déjà prise en charge par "
                           f"{(await person(ctx.services, task.owner)).text()} : rien n'a changé.")
    if task.owner is None:
        member = await ctx.services.roster.get(ctx.sender)
        coordination = task.profession == COORDINATION and member is not None and member.coordinator
        if member is None or (member.profession.key != task.profession and not coordination):
            return Reply.plain(f"La tâche n° {task.number} est demandée aux {plural(task.profession or '')} : "
                               "rien n'a changé.")
    refused = await refused_owner(ctx, ctx.room_pathway, ctx.sender, task.category)
    if refused:
        return Reply.plain(f"Tâche non prise : {refused}")
    changed = await ctx.services.tasks.take(task, ctx.sender)
    if changed is None:   # someone took it between the reading and the change
        return await _gone(ctx, task)
    return await _told(ctx, changed[0], f"Tâche n° {task.number} prise en charge par "
                                        f"{(await person(ctx.services, ctx.sender)).text()} (trace {changed[1]}).")


@tache.sub("faite", en="done", aliases=["fait", "terminer"],
           args=[Arg("n", "le numéro de la tâche", parse=count),
                 Arg("commentaire", "ce qui a été fait, tel que vous l'écrivez", required=False, rest=True)],
           help="Marque une tâche comme faite ; une tâche récurrente revient à sa prochaine échéance.")
async def _done(ctx: Context[TaskPorts]) -> Reply:
    task = await _open_task(ctx, "marquer faite")
    if isinstance(task, Reply):
        return task
    now = ctx.services.clock.now_ms()
    again = next_due(task.recurrence, task.due_at, now) if task.recurrence else None
    changed = await ctx.services.tasks.done(task, ctx.sender, ctx.args.get("commentaire"), again)
    if changed is None:
        return await _gone(ctx, task)
    after, ref = changed
    more = f" ; elle revient le {shown(after.due_at)} ({recurrence_label(task.recurrence)})" if again else ""
    return await _told(ctx, after, f"Tâche n° {task.number} faite{more} (trace {ref}).")


@tache.sub("reporter", en="postpone", aliases=["decaler"],
           args=[Arg("n", "le numéro de la tâche", parse=count),
                 Arg("echeance", "la nouvelle échéance : demain, dans 3 jours, lundi 14h, le 12/01", rest=True)],
           help="Reporte une tâche à une nouvelle échéance (gardée dans son historique).")
async def _postpone(ctx: Context[TaskPorts]) -> Reply:
    task = await _open_task(ctx, "reporter")
    if isinstance(task, Reply):
        return task
    due = read_due(ctx.args["echeance"], ctx.services.clock.now(), recurrence=False)
    if isinstance(due, str) or due.at is None:
        why = due if isinstance(due, str) else "précisez l'échéance"
        examples = " ; ".join(f"« !tache reporter {task.number} {e} »" for e in EXAMPLES)
        return Reply.plain(f"Tâche non reportée : {why}. Par exemple : {examples}.")
    changed = await ctx.services.tasks.postpone(task, ctx.sender, due.at)
    if changed is None:
        return await _gone(ctx, task)
    return await _told(ctx, changed[0], f"Tâche n° {task.number} reportée : échéance le {shown(due.at)} (avant : "
                                        f"{shown(task.due_at)} ; trace {changed[1]}).")


@tache.sub("confier", en="assign", aliases=["transferer"],
           args=[Arg("n", "le numéro de la tâche", parse=count), Arg("compte", "@nom:serveur", parse=matrix_id)],
           help="Confie une tâche à un autre membre de l'équipe de soins du patient.")
async def _assign(ctx: Context[TaskPorts]) -> Reply:
    task = await _open_task(ctx, "confier")
    if isinstance(task, Reply):
        return task
    owner = ctx.args["compte"]
    refused = await refused_owner(ctx, ctx.room_pathway, owner, task.category)
    if refused:
        return Reply.plain(f"Tâche non confiée : {refused}")
    changed = await ctx.services.tasks.assign(task, ctx.sender, owner)
    if changed is None:
        return await _gone(ctx, task)
    return await _told(ctx, changed[0], f"Tâche n° {task.number} confiée à "
                                        f"{(await person(ctx.services, owner)).text()} (trace {changed[1]}).")


@tache.sub("annuler", en="cancel", args=[Arg("n", "le numéro de la tâche", parse=count)],
           help="Annule une tâche (elle reste dans l'historique du parcours).")
async def _cancel(ctx: Context[TaskPorts]) -> Reply:
    task = await _open_task(ctx, "annuler")
    if isinstance(task, Reply):
        return task
    changed = await ctx.services.tasks.cancel(task, ctx.sender)
    if changed is None:
        return await _gone(ctx, task)
    return await _told(ctx, changed[0], f"Tâche n° {task.number} annulée (trace {changed[1]}).")


@tache.sub("historique", en="history", args=[Arg("n", "le numéro de la tâche", parse=count)],
           help="L'historique d'une tâche : qui l'a créée, prise, confiée, reportée, faite ou annulée, et quand.")
async def _history(ctx: Context[TaskPorts]) -> Reply:
    number = ctx.args["n"]
    task = await ctx.services.tasks.by_number(ctx.room_pathway.id, number)
    if task is None:
        return Reply.plain(f"Aucune tâche n° {number} dans ce parcours (!taches pour la liste).")
    lines = [f"Tâche n° {task.number} ({STATES[task.state]}) : {first_line(task.text)}"]
    for e in await ctx.services.tasks.history(task.id):
        by = (await person(ctx.services, e.actor)).text()
        to = f" à {(await person(ctx.services, e.owner)).text()}" if e.owner and e.what in ("confiee", "creee") else ""
        due = f", échéance {shown(e.due_at)}" if e.due_at and e.what in ("creee", "reportee", "faite") else ""
        note = f" : {e.detail}" if e.detail and e.what == "faite" else ""
        note = f" ({e.detail})" if e.detail and e.what == "creee" else note   # « protocole insuffisance-cardiaque »
        lines.append(f"{shown(e.at)} — {_DONE_AS.get(e.what, e.what)}{to}{due}{note}, par {by}")
    return Reply.plain("\n".join(lines))


_DONE_AS = {"creee": "créée", "prise": "prise en charge", "faite": "faite", "reportee": "reportée",
            "confiee": "confiée", "annulee": "annulée", "rendue": "rendue à la coordination"}


@command("taches", en="tasks", patient_data=True, who=Audience.STAFF,
         room=("pathway", "circle", "direct", "coordination"), shows="items",
         help="Les tâches : du parcours dans son salon (au cercle élargi, celles des catégories qu'il partage) ; les "
              "vôtres, tous patients confondus, en conversation privée avec Liaison ; celles en retard, dans le salon "
              "de la coordination.")
async def taches(ctx: Context[TaskPorts]) -> Reply:
    if ctx.room_kind == "direct":
        return await _mine(ctx)
    if ctx.room_kind == "coordination":
        return await _late(ctx)
    pathway = ctx.room_pathway
    listed = await ctx.services.tasks.of_pathway(pathway.id)
    shown_as: dict[str, Decided] = {}   # each category decided for this room (the circle room: only its own)
    for category in dict.fromkeys(["soins", *(t.category for t in listed)]):
        shown_as[category] = await may_show(ctx, pathway, category)
    if not any(d.allowed for d in shown_as.values()):
        refused = next(reversed(shown_as.values()))
        return Reply.plain(f"!taches ne répond pas dans ce salon : {refused.sentence()}.")
    now = ctx.services.clock.now_ms()
    every = [t for t in listed if shown_as[t.category].allowed]
    late = sorted((t for t in every if t.overdue(now)), key=by_due)
    pending = sorted((t for t in every if t.open and not t.overdue(now)), key=by_due)
    done = sorted((t for t in every if t.state == "faite"), key=lambda t: -t.updated_at)[:_LISTED_DONE]
    if not (late or pending or done):
        return Reply.plain("Aucune tâche dans ce parcours. Créez-en une : !tache <texte> pour @compte échéance demain")
    lines = [f"Tâches du parcours {pathway.code} :"]
    for title, tasks in (("En retard", late), ("À faire", pending), ("Faites récemment", done)):
        if tasks:
            lines.append(f"{title} :")
            lines += [await _line(ctx, t) for t in tasks]
    return Reply.plain("\n".join(lines))


async def _mine(ctx: Context[TaskPorts]) -> Reply:
    """My open tasks, every patient, the nearest first: each pathway decided for this direct conversation (what I may
    see), as far as the LISTED_MAX shown (an answer must fit in one event, and be read)."""
    member = await ctx.services.roster.get(ctx.sender)
    profession = member.profession.key if member else None
    total = await ctx.services.tasks.count_open_for(ctx.sender, profession)
    read = 2 * LISTED_MAX   # the nearest tasks only: more when refused pathways hide some of them
    shown_in: dict[str, Pathway | None] = {}   # each pathway the nearest tasks need, decided for this room
    while True:
        tasks = sorted(await ctx.services.tasks.open_for(ctx.sender, profession, read), key=by_due)
        while wanted := _undecided(tasks, shown_in):   # once, unless some are refused: then the next ones
            found = await ctx.services.pathways.pathways(wanted)
            opened = [found[i] for i in wanted if found[i].status == "open"]
            shown_in |= dict.fromkeys(wanted)   # a closed pathway: not shown, not decided
            for pathway, decided in zip(opened, await may_show_many(ctx, opened), strict=True):
                shown_in[pathway.id] = pathway if decided.allowed else None
        mine: list[Task] = []
        hidden = 0
        for t in tasks:
            if len(mine) == LISTED_MAX:
                break
            if shown_in[t.pathway_id]:
                mine.append(t)
            else:
                hidden += 1
        if len(mine) == LISTED_MAX or len(tasks) < read:
            break
        read *= 4
    note = (f"\n{hidden} autre(s) tâche(s) non montrée(s) : la règle de partage ne vous montre plus leur parcours, ou "
            "il est clos." if hidden else "")
    if not mine:
        return Reply.plain("Aucune tâche ouverte pour vous." + note)
    now = ctx.services.clock.now_ms()
    more = max(0, total - len(mine) - hidden)
    lines = [f"Vos tâches ({len(mine)}) :" if not more else
             f"Vos tâches : les {len(mine)} plus proches (et {more} autre(s) plus loin : !taches dans le salon de "
             "chaque parcours) :"]
    for t in mine:
        of = shown_in[t.pathway_id]
        assert of is not None
        late = " ⚠️ en retard" if t.overdue(now) else ""
        lines.append(f"{of.code} n° {t.number} · {due_text(t)}{late} · {first_line(t.text)} · "
                     f"{room_link(of.room_id) if of.room_id else '—'}")
    return Reply.plain("\n".join(lines) + note)


def _undecided(tasks: list[Task], shown_in: dict[str, Pathway | None]) -> list[str]:
    """The pathways, not decided yet, of the tasks a list of LISTED_MAX would show if each of them were allowed (in
    the order of the tasks): exactly those a pathway-by-pathway walk would decide, when they are."""
    wanted: dict[str, None] = {}
    counted = 0
    for t in tasks:
        if counted == LISTED_MAX:
            break
        if t.pathway_id not in shown_in:
            wanted[t.pathway_id] = None
            counted += 1
        elif shown_in[t.pathway_id]:
            counted += 1
    return list(wanted)


async def _late(ctx: Context[TaskPorts]) -> Reply:
    """The overdue tasks by pathway code and profession: no patient's name, no task's text."""
    now = ctx.services.clock.now_ms()
    rows: list[str] = []
    refusal: Decided | None = None
    by_pathway: dict[str, list[Task]] = {}
    for t in await ctx.services.tasks.overdue(now):
        by_pathway.setdefault(t.pathway_id, []).append(t)
    for pathway_id, tasks in by_pathway.items():
        pathway = await ctx.services.pathways.pathway(pathway_id)
        if pathway.status != "open":
            continue
        decided = await may_show(ctx, pathway)
        if not decided.allowed:
            refusal = decided
            continue
        for t in tasks:
            rows.append(f"{pathway.code} n° {t.number} · {await _profession_of(ctx, t)} · {t.category} · échue le "
                        f"{shown(t.due_at)}")
    if refusal is not None and not rows:
        return Reply.plain(f"!taches ne répond pas dans ce salon : {refusal.sentence()}.")
    if not rows:
        return Reply.plain("Aucune tâche en retard.")
    more = f"\n… et {len(rows) - LISTED_MAX} autre(s)." if len(rows) > LISTED_MAX else ""
    return Reply.plain(f"Tâches en retard ({len(rows)}) :\n" + "\n".join(rows[:LISTED_MAX]) + more)


# -- what the sub-commands share ---------------------------------------------------------------------------------

async def _told(ctx: Context[TaskPorts], task: Task, text: str) -> Reply:
    """The answer to a change of `task`: the board edited first, then this notice, which a ✋ or ✅ reaction on it acts
    on (bot/reactions.py)."""
    await ctx.services.boards.changed(ctx.room_pathway)
    if task.goal is not None:   # the care plan shows the tasks of its goals
        await ctx.services.plans.changed(ctx.room_pathway)
    tasks = ctx.services.tasks
    return Reply.plain(text).then(lambda event_id: tasks.noticed(task, event_id))


async def _open_task(ctx: Context[TaskPorts], doing: str | None = None) -> Task | Reply:
    """The task numbered in this pathway, still open, that the sender may change (`doing`: what they would do, said
    in the refusal); or the French answer that nothing changes. A task is changed by its owner, by whoever made it
    and by the coordination; a request no one has taken yet, also by a member of the profession it is asked of."""
    number = ctx.args["n"]
    task = await ctx.services.tasks.by_number(ctx.room_pathway.id, number)
    if task is None:
        return Reply.plain(f"Aucune tâche n° {number} dans ce parcours (!taches pour la liste) : rien n'a changé.")
    if not task.open:
        return Reply.plain(f"La tâche n° {number} est {STATES[task.state]} : rien n'a changé.")
    if doing is None or ctx.is_coordinator or ctx.sender in (task.owner, task.created_by):
        return task
    if task.owner is None:
        member = await ctx.services.roster.get(ctx.sender)
        if member is not None and member.profession.key == task.profession:
            return task
    whose = ((await person(ctx.services, task.owner)).text() if task.owner
             else f"demandée aux {plural(task.profession or '')}")
    maker = (await person(ctx.services, task.created_by)).text()
    return Reply.plain(f"La tâche n° {number} est {'à ' if task.owner else ''}{whose} : seuls son responsable, qui "
                       f"l'a créée ({maker}) et la coordination peuvent la {doing}. Rien n'a changé.")


async def no_goal(ctx: Context[TaskPorts], pathway: Pathway, number: int) -> str | None:
    """Why a task cannot serve goal `number` of the pathway's care plan, or None."""
    goal = await ctx.services.care_plans.goal(pathway.id, number)
    if goal is None:
        return f"aucun objectif n° {number} dans le plan de ce parcours (!ppcs pour le plan, !ppcs objectif <texte>)."
    if not goal.open:
        return f"l'objectif n° {number} est {GOAL_STATES[goal.state]} : rattachez la tâche à un objectif en cours."
    return None


async def _gone(ctx: Context[TaskPorts], task: Task) -> Reply:
    """The task changed between its reading and the change (taken by someone else, done, cancelled)."""
    now = await ctx.services.tasks.by_number(task.pathway_id, task.number)
    if now is not None and now.open and now.owner:
        return Reply.plain(f"La tâche n° {task.number} vient d'être prise en charge par "
                           f"{(await person(ctx.services, now.owner)).text()} : rien n'a changé.")
    state = STATES[now.state] if now else "introuvable"
    return Reply.plain(f"La tâche n° {task.number} est {state} : rien n'a changé.")


@dataclass(frozen=True)
class Checked:
    """A task typed on one line, ready to store: its draft, and whom it goes to as the answer says it."""
    draft: Draft
    for_whom: str   # « Dr Paul Martin (Médecin) », or « demandée aux infirmiers du parcours (2) »


async def checked_draft(ctx: Context[TaskPorts], pathway: Pathway, raw: str) -> Checked | str:
    """The task typed on `raw` (a new task, an RCP decision) with its goal and whoever it goes to checked, each owner
    decided on `task.assign`; or why not, in French (with an example when the line cannot be read)."""
    typed = read_line(raw, ctx.services.clock.now())
    if isinstance(typed, str):
        return f"{typed}. Par exemple : {example(raw)}."
    if typed.goal is not None and (unknown := await no_goal(ctx, pathway, typed.goal)):
        return unknown
    owner = typed.owner or (None if typed.profession else ctx.sender)
    if owner is not None:
        refused = await refused_owner(ctx, pathway, owner, typed.category)
        if refused:
            return refused
        for_whom = (await person(ctx.services, owner)).text()
    else:
        assert typed.profession is not None
        asked = await profession_members(ctx, pathway, typed.profession, typed.category)
        if isinstance(asked, str):
            return asked
        for_whom = f"demandée aux {plural(typed.profession)} du parcours ({len(asked)})"
    due = typed.due
    return Checked(Draft(typed.text, typed.category, owner, None if owner else typed.profession,
                         due.at if due else None, due.recurrence if due else None, typed.goal), for_whom)


async def refused_owner(ctx: Context[TaskPorts], pathway: Pathway, owner: str, category: str) -> str | None:
    """Why `owner` may not be given a task of `pathway` (decided, traced), or None."""
    if await ctx.services.matrix.display_name(owner) is None:   # before deciding: nothing traced for no one
        return f"le compte {owner} n'existe pas : vérifiez l'identifiant."
    decided = await decide_at(ctx.services.sharing, "task.assign", pathway=pathway, recipient=owner, actor=ctx.sender,
                              data_category=category)
    if not decided.allowed:
        return f"{decided.sentence()}."
    if owner not in _active(await ctx.services.pathways.members(pathway.id), category):
        who = (await person(ctx.services, owner)).text()
        return f"{who} n'est pas membre du salon de ce parcours : invitez-le d'abord (!parcours inviter {owner})."
    return None


async def profession_members(ctx: Context[TaskPorts], pathway: Pathway, profession: str,
                              category: str) -> list[str] | str:
    """The members of `profession` in the pathway a request may go to (each decided), or why none."""
    found = []
    for user_id in _active(await ctx.services.pathways.members(pathway.id), category):
        member = await ctx.services.roster.get(user_id)
        if member is not None and member.profession.key == profession:
            found.append(user_id)
    if not found:
        return (f"aucun membre du parcours n'est {singular(profession)} : invitez-en un d'abord (!parcours inviter), "
                "ou confiez la tâche à quelqu'un (pour @compte).")
    allowed, last = [], None
    for user_id in found:
        decided = await decide_at(ctx.services.sharing, "task.assign", pathway=pathway, recipient=user_id,
                                  actor=ctx.sender, data_category=category)
        if decided.allowed:
            allowed.append(user_id)
        last = decided
    if not allowed and last is not None:
        return f"{last.sentence()}."
    return allowed


def _active(members: Iterable[tuple[str, str, str]], category: str = "soins") -> list[str]:
    """Who of the pathway's members may hold a task of `category`: the clinical room's; for a social or administrative
    task, also those of the circle room (what their role may know is the decision's, `task.assign`)."""
    states = ACTIVE if category == "soins" else (*ACTIVE, CIRCLE_STATE)
    return [user_id for user_id, state, _rule in members if state in states]


async def _line(ctx: Context[TaskPorts], t: Task) -> str:
    who = ((await person(ctx.services, t.owner)).text() if t.owner
           else f"demandée aux {plural(t.profession or '')}")
    state = "" if t.state == "a_faire" else f" ({STATES[t.state]})"
    return f"n° {t.number} · {first_line(t.text)} · {who}{state} · {due_text(t)}"


async def _profession_of(ctx: Context[TaskPorts], t: Task) -> str:
    if t.owner is None:
        return singular(t.profession or "")
    member = await ctx.services.roster.get(t.owner)
    return member.profession.label if member else "hors de l'équipe de la structure"


ALL = [tache, taches]
