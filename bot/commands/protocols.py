"""`!protocole`: the structure's protocols (protocoles pluriprofessionnels, bot/protocols.py), listed anywhere, applied
in a pathway's room.

Applying one creates one task per step (liaison/stores/tasks.py `create_many`: all in one transaction, or none), due
from today in Paris, each going to the pathway's team by profession: to the one member of that profession who may
receive it, decided as `!tache … pour @compte` is (`task.assign`, traced); to every such member as a request when
there are several, as `!tache … pour l'infirmière` is; and still to the profession, said in the answer, when there
is nobody. A protocol is applied once to a pathway.
"""
from __future__ import annotations

from bot.commands.tasks import TaskPorts
from bot.members import person
from bot.protocols import Protocol, Step, shown_at
from bot.registry import Arg, Audience, Context, Reply, group
from bot.task_dates import recurrence_label, shown
from bot.task_text import plural, singular
from liaison.enforcement import decide_at
from liaison.sharing_facts import ACTIVE
from liaison.stores.pathways import Pathway
from liaison.stores.tasks import AlreadyApplied, Draft

protocole = group("protocole", en="protocol", aliases=["protocoles", "protocols"], patient_data=True,
                  who=Audience.STAFF, default="liste",
                  help="Les protocoles pluriprofessionnels : les lister, en appliquer un à un parcours (ses étapes "
                       "deviennent des tâches).")


@protocole.sub("liste", en="list", shows="none",
               help="Les protocoles de la structure : nom, titre, nombre d'étapes.")
async def _list(ctx: Context[TaskPorts]) -> Reply:
    protocols = ctx.services.settings.protocols.protocols
    if not protocols:
        return Reply.plain("Aucun protocole : ajoutez-en dans le dossier pathways.protocols_folder de la configuration.")
    lines = [f"Protocoles ({len(protocols)}) :"]
    lines += [f"{p.name} — {p.title} ({len(p.steps)} étape{'s' if len(p.steps) > 1 else ''})" for p in protocols]
    lines.append("Dans le salon d'un parcours : !protocole appliquer <nom>")
    return Reply.plain("\n".join(lines))


@protocole.sub("appliquer", en="apply", room="pathway", open=True,
               args=[Arg("nom", "le nom du protocole (!protocole liste)", rest=True)],
               help="Applique un protocole au parcours : une tâche par étape, confiée au membre de l'équipe de la "
                    "profession de l'étape (ou demandée à cette profession).")
async def _apply(ctx: Context[TaskPorts]) -> Reply:
    pathway, catalogue = ctx.room_pathway, ctx.services.settings.protocols
    found = catalogue.find(ctx.args["nom"])
    if found is None:
        return Reply.plain(f"Protocole inconnu « {ctx.args['nom'].strip()} » : rien n'a été créé. Protocoles : "
                           f"{', '.join(catalogue.names()) or 'aucun'} (!protocole liste).")
    applied = await ctx.services.tasks.applied(pathway.id, found.name)
    if applied is not None:
        return await _twice(ctx, found, applied.at, applied.actor)
    now = ctx.services.clock.now()
    chosen: dict[tuple[str, str], tuple[list[str], str]] = {}   # (profession, category) -> who may receive it (each
    drafts, nobody = [], []                                        # decided once), or why none may
    for i, step in enumerate(found.steps):
        if (step.profession, step.category) not in chosen:
            chosen[step.profession, step.category] = await _receivers(ctx, pathway, step)
        receivers, why = chosen[step.profession, step.category]
        owner = receivers[0] if len(receivers) == 1 else None
        if not receivers:
            nobody.append((i, why))
        drafts.append(Draft(step.text, step.category, owner, None if owner else step.profession,
                            step.due_at(now), step.recurrence))
    try:
        made = await ctx.services.tasks.create_many(pathway.id, drafts, actor=ctx.sender, protocol=found.name)
    except AlreadyApplied as err:   # applied by someone else between the reading and the writing
        return await _twice(ctx, found, err.applied.at, err.applied.actor)
    lines = [f"Protocole « {found.title} » appliqué : {len(made)} tâche(s) créée(s) (traces "
             f"{made[0][1]} à {made[-1][1]}) :"]
    for (task, _ref), step in zip(made, found.steps):
        who = ((await person(ctx.services, task.owner)).text() if task.owner
               else f"demandée aux {plural(step.profession)} du parcours")
        rule = recurrence_label(task.recurrence)
        lines.append(f"n° {task.number} · {task.text} · {who} · échéance {shown(task.due_at)}"
                     + (f", {rule}" if rule else "") + (f" · {task.category}" if task.category != "soins" else ""))
    if nobody:
        missing = ", ".join(f"n° {made[i][0].number} ({singular(found.steps[i].profession)}{why})"
                            for i, why in nobody)
        lines.append(f"Personne dans l'équipe pour : {missing}. Ces tâches restent demandées à leur profession : "
                     "invitez un de ses membres (!parcours inviter @compte), ou confiez-les (!tache confier <n> "
                     "@compte).")
    await ctx.services.boards.changed(pathway)   # one edit for the protocol's tasks
    return Reply.plain("\n".join(lines))


async def _twice(ctx: Context[TaskPorts], found: Protocol, at: int, actor: str) -> Reply:
    by = (await person(ctx.services, actor)).text()
    return Reply.plain(f"Le protocole « {found.title} » a déjà été appliqué à ce parcours le {shown_at(at)} par {by} : "
                       "rien n'a été créé (!taches pour ses tâches).")


async def _receivers(ctx: Context[TaskPorts], pathway: Pathway, step: Step) -> tuple[list[str], str]:
    """The members of the pathway's room of the step's profession who may be given a task of its category: each
    decided (`task.assign`, traced), as `!tache … pour <profession>` decides them; when none may, why (« » when
    there is no one of that profession, else the last refusal's sentence)."""
    allowed, why = [], ""
    for user_id, state, _rule in await ctx.services.pathways.members(pathway.id):
        if state not in ACTIVE:
            continue
        member = await ctx.services.roster.get(user_id)
        if member is None or member.profession.key != step.profession:
            continue
        decided = await decide_at(ctx.services.sharing, "task.assign", pathway=pathway, recipient=user_id,
                                  actor=ctx.sender, data_category=step.category)
        if decided.allowed:
            allowed.append(user_id)
        else:
            why = f" : {decided.sentence()}"
    return sorted(allowed), why


ALL = [protocole]
