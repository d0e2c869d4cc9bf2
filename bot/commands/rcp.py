"""`!rcp`: réunions de concertation pluriprofessionnelle (journey J9).

Planned, moved, cancelled and led from the coordination's room; a case is enrolled from its patient's room (or from
the coordination's room with its pathway code). The agenda goes out by itself (bot/rcp_agenda.py); a decision taken
during the meeting is a task of the patient's pathway, linked to the meeting (liaison/stores/rcp.py), announced in
the patient's room and on its board; `!rcp clore` publishes the minutes (bot/rcp_minutes.py).

Whatever an answer shows of a case (its pathway code and question) is decided for the room it is read in
(`rcp.agenda`), and a decision's announcement in the patient's room (`rcp.decision`); each is traced.
"""
from __future__ import annotations

from typing import Protocol

from bot.commands.tasks import TaskPorts, checked_draft
from bot.members import person
from bot.rooms import may_show
from bot.rcp_agenda import AgendaPorts, RcpAgenda, meetings
from bot.rcp_minutes import publish
from bot.rcp_text import EXAMPLE, heading, is_code, item_line, read_meeting, read_moment, when
from bot.registry import MAIL_ADDRESS, Arg, Audience, Context, Reply, group
from bot.task_text import due_text
from liaison.enforcement import decide_at
from liaison.matrix import txn_id
from liaison.matrix.content import notice
from liaison.stores.pathways import Pathway
from liaison.trusted import TrustedDomains
from liaison.stores.rcp import MAX_QUESTION, STATES, Enrolled, Rcp
from liaison.stores.tasks import UnknownGoal


class RcpPorts(TaskPorts, AgendaPorts, Protocol):
    """What `!rcp` reads and changes: the meetings and their agendas, the tasks a decision makes, who is who."""
    @property
    def agendas(self) -> RcpAgenda: ...
    @property
    def trusted(self) -> TrustedDomains | None: ...


rcp = group("rcp", en="mdt", aliases=["reunion", "concertation"], patient_data=True, who=Audience.STAFF,
            room=("coordination", "pathway"), shows="items", default="liste",
            help="Les réunions de concertation pluriprofessionnelle : planifier, inscrire un cas, participants, "
                 "ouvrir, décisions, clore (!aide rcp pour le détail).")

CODE = Arg("code", "le code de la RCP (ex. R-7K3Q9)")


@rcp.sub("planifier", shows="none", en="plan", aliases=["prevoir", "nouvelle"], room="coordination",
         args=[Arg("quand", "la date et l'heure (jeudi 12h30, le 14/01 18h), puis, au choix, le lieu ou le lien, "
                            "puis le titre (séparés par « ; »)", rest=True)],
         help="Planifie une RCP : son ordre du jour partira tout seul quelques jours avant.")
async def _plan(ctx: Context[RcpPorts]) -> Reply:
    meeting = read_meeting(ctx.args["quand"], ctx.services.clock.now())
    if isinstance(meeting, str):
        return Reply.plain(f"RCP non planifiée : {meeting}. Par exemple : {EXAMPLE}")
    made = await meetings(ctx.services).plan(meeting.starts_at, meeting.place, meeting.title, ctx.sender)
    out = ctx.services.agendas.goes_out_at(made)
    sent = ("tout de suite" if out <= ctx.services.clock.now_ms() else f"le {when(out)}")
    return Reply.plain(f"{heading(made)} : planifiée. L'ordre du jour partira {sent}.\n"
                       f"Inscrire un cas : !rcp inscrire <question> dans le salon du patient. "
                       f"Participants : !rcp participants {made.code} @compte adresse@mssante…")


@rcp.sub("liste", en="list", aliases=["prochaines"],
         help="Les RCP à venir (salon de la coordination) ; celles où ce patient est inscrit (salon du patient).")
async def _list(ctx: Context[RcpPorts]) -> Reply:
    store = meetings(ctx.services)
    coming = await store.coming(ctx.services.clock.now_ms())
    if ctx.room_kind != "coordination":
        pathway = ctx.room_pathway
        lines = []
        for r in coming:
            item = await store.item_of(r.id, pathway.id)
            if item is not None and await _shown(ctx, pathway):
                lines.append(f"{heading(r)} ({STATES[r.state]}) : n° {item.number}, {item.question}")
        return Reply.plain("Ce patient est inscrit à :\n" + "\n".join(lines) if lines else
                           "Ce patient n'est inscrit à aucune RCP à venir : !rcp inscrire <question>.")
    if not coming:
        return Reply.plain(f"Aucune RCP à venir. Planifiez-en une : {EXAMPLE}")
    lines = ["RCP à venir :"]
    for r in coming:
        items = await store.items(r.id)
        found = await ctx.services.pathways.pathways({i.pathway_id for i in items})
        codes = [found[i.pathway_id].code if await _shown(ctx, found[i.pathway_id]) else "(non montré)"
                 for i in items]
        people = len(await store.participants(r.id))
        cases = f"{len(items)} cas" + (f" ({', '.join(codes)})" if codes else "")
        lines.append(f"{heading(r)} · {STATES[r.state]} · {cases} · {people} participant(s)")
    return Reply.plain("\n".join(lines))


@rcp.sub("ordre", en="agenda", aliases=["ordre-du-jour", "odj"], room="coordination", args=[CODE],
         help="L'ordre du jour d'une RCP : chaque cas par son code de parcours et sa question.")
async def _agenda(ctx: Context[RcpPorts]) -> Reply:
    found = await _meeting(ctx, ctx.args["code"])
    if isinstance(found, Reply):
        return found
    return Reply.plain(f"{heading(found)} ({STATES[found.state]}) :\n" + await _cases(ctx, found))


@rcp.sub("annuler", shows="none", en="cancel", room="coordination", args=[CODE],
         help="Annule une RCP prévue ; les salons des patients et les participants sont prévenus.")
async def _cancel(ctx: Context[RcpPorts]) -> Reply:
    found = await _meeting(ctx, ctx.args["code"], "prevue")
    if isinstance(found, Reply):
        return found
    done = await meetings(ctx.services).cancel(found, ctx.sender)
    if done is None:
        return Reply.plain(f"La RCP {found.code} vient de changer : rien n'a été annulé (!rcp pour la voir).")
    told = ""
    if found.agenda_sent > 0:
        await ctx.services.agendas.send(done, cancelled=True)
        told = " Les salons des patients inscrits et les participants sont prévenus."
    return Reply.plain(f"{heading(done)} : annulée.{told}")


@rcp.sub("deplacer", shows="none", en="move", aliases=["reporter", "decaler"], room="coordination",
         args=[CODE, Arg("quand", "la nouvelle date et heure", rest=True)],
         help="Déplace une RCP prévue ; l'ordre du jour repart s'il était parti.")
async def _move(ctx: Context[RcpPorts]) -> Reply:
    found = await _meeting(ctx, ctx.args["code"], "prevue")
    if isinstance(found, Reply):
        return found
    read = read_moment(ctx.args["quand"], ctx.services.clock.now())
    if isinstance(read, str) or read[1]:
        why = read if isinstance(read, str) else f"« {read[1]} » en trop après la date"
        return Reply.plain(f"RCP non déplacée : {why}. Par exemple : !rcp deplacer {found.code} jeudi 12h30")
    assert read[0].at is not None
    moved = await meetings(ctx.services).move(found, ctx.sender, read[0].at)
    if moved is None:
        return Reply.plain(f"La RCP {found.code} vient de changer : rien n'a été déplacé.")
    await ctx.services.agendas.changed(moved)
    return Reply.plain(f"{heading(moved)} : déplacée (avant : {when(found.starts_at)}).")


@rcp.sub("inscrire", en="enrol", aliases=["ajouter", "enroll"],
         args=[Arg("question", "dans le salon du patient : [code de la RCP] la question ; dans le salon de la "
                               "coordination : le code du parcours, [code de la RCP], la question", rest=True)],
         help="Inscrit le cas d'un patient à la prochaine RCP (ou à celle nommée), avec la question posée.")
async def _enrol(ctx: Context[RcpPorts]) -> Reply:
    words = ctx.args["question"].split(maxsplit=1)
    raw = ctx.args["question"]
    if ctx.room_kind == "coordination":
        if len(words) < 2:
            return Reply.plain("Cas non inscrit : donnez le code du parcours puis la question, par exemple "
                               "« !rcp inscrire P-7K3Q9 adapter le traitement ? ».")
        pathway = await ctx.services.pathways.by_code(words[0])
        if pathway is None or pathway.status != "open":
            return Reply.plain(f"Cas non inscrit : aucun parcours ouvert de code « {words[0]} ».")
        raw = raw.lstrip()[len(words[0]):].lstrip()
    else:
        pathway = ctx.room_pathway
        if pathway.status != "open":
            return Reply.plain("Ce parcours est clos : rouvrez-le d'abord (!parcours rouvrir).")
    shown = await may_show(ctx, pathway)   # the answer says the case and its question, read in this room
    if not shown.allowed:
        return Reply.plain(f"!rcp inscrire ne répond pas dans ce salon : {shown.sentence()}.")
    first = raw.split(maxsplit=1)
    store = meetings(ctx.services)
    if first and is_code(first[0]):
        target = await _meeting(ctx, first[0], "prevue")
        if isinstance(target, Reply):
            return target
        raw = raw.lstrip()[len(first[0]):].lstrip()
    else:
        planned = [r for r in await store.coming(ctx.services.clock.now_ms()) if r.state == "prevue"]
        if not planned:
            return Reply.plain(f"Cas non inscrit : aucune RCP prévue. La coordination en planifie une : {EXAMPLE}")
        target = planned[0]
    if not raw.strip() or len(raw) > MAX_QUESTION:
        return Reply.plain(f"Cas non inscrit : écrivez la question posée à la réunion (1 à {MAX_QUESTION} "
                           "caractères).")
    try:
        item, ref = await store.enrol(target, pathway.id, raw, ctx.sender)
    except Enrolled:
        return Reply.plain(f"Ce cas est déjà inscrit à la {heading(target)} : rien n'a changé.")
    await ctx.services.agendas.changed(target)
    said = f"Cas du parcours {pathway.code} inscrit à la {heading(target)}, n° {item.number} (trace {ref})."
    if ctx.room_kind == "coordination":
        await _announce(ctx, pathway, f"Ce patient est inscrit à la {heading(target)} (n° {item.number}) :\n{raw}",
                        txn_id(ctx.event_id, "rcp-enrolled"))
        return Reply.plain(said + " Annoncé dans le salon du patient.")
    return Reply.plain(f"{said}\nQuestion : {raw}")


@rcp.sub("participants", shows="none", en="participants", aliases=["inviter"], room="coordination",
         args=[CODE, Arg("qui", "les comptes (@nom:serveur) et adresses MSSanté ; rien : la liste", required=False,
                         rest=True)],
         help="Ajoute des participants à une RCP : membres de l'équipe et correspondants MSSanté (par courriel).")
async def _participants(ctx: Context[RcpPorts]) -> Reply:
    found = await _meeting(ctx, ctx.args["code"])
    if isinstance(found, Reply):
        return found
    typed = (ctx.args.get("qui") or "").replace(",", " ").split()
    if not typed:
        listed = await meetings(ctx.services).participants(found.id)
        names = [(await person(ctx.services, p.address)).text() + (" (présent)" if p.present_at else "")
                 for p in listed]
        return Reply.plain(f"Participants de la RCP {found.code} : " + (", ".join(names) or "aucun pour l'instant."))
    bad = await _unknown(ctx, typed)
    if bad:
        return Reply.plain(f"Aucun participant ajouté : {bad}")
    if found.state not in ("prevue", "ouverte"):
        return Reply.plain(f"La RCP {found.code} est {STATES[found.state]} : rien n'a changé.")
    added = await meetings(ctx.services).add_participants(found, typed, ctx.sender)
    await ctx.services.agendas.changed(found)
    names = [(await person(ctx.services, a)).text() for a in added]
    return Reply.plain(f"RCP {found.code} : " + (f"{len(added)} participant(s) ajouté(s) : {', '.join(names)}."
                                                   if added else "tous étaient déjà participants."))


@rcp.sub("ouvrir", en="open", aliases=["commencer"], room="coordination", args=[CODE],
         help="Ouvre la réunion : les décisions peuvent être prises (!rcp decision).")
async def _open(ctx: Context[RcpPorts]) -> Reply:
    found = await _meeting(ctx, ctx.args["code"], "prevue")
    if isinstance(found, Reply):
        return found
    opened = await meetings(ctx.services).open(found, ctx.sender)
    if opened is None:
        return Reply.plain(f"La RCP {found.code} vient de changer : rien n'a été ouvert.")
    return Reply.plain(f"{heading(opened)} : ouverte.\n{await _cases(ctx, opened)}\n"
                       "Présents : !rcp presents @a @b ; décision : !rcp decision <code parcours> <texte> pour @x "
                       "échéance <quand> ; fin : !rcp clore.")


@rcp.sub("presents", shows="none", en="present", aliases=["presence"], room="coordination",
         args=[Arg("qui", "les comptes et adresses présents", rest=True)],
         help="Note les présents de la réunion ouverte.")
async def _present(ctx: Context[RcpPorts]) -> Reply:
    found = await _open_meeting(ctx)
    if isinstance(found, Reply):
        return found
    typed = ctx.args["qui"].replace(",", " ").split()
    bad = await _unknown(ctx, typed)
    if bad:
        return Reply.plain(f"Personne n'a été noté présent : {bad}")
    marked = await meetings(ctx.services).present(found, typed, ctx.sender)
    return Reply.plain(f"RCP {found.code} : {len(marked)} présent(s) noté(s)." if marked else
                       f"RCP {found.code} : tous étaient déjà notés présents.")


@rcp.sub("decision", shows="none", en="decision", aliases=["decider"], room="coordination",
         args=[Arg("parcours", "le code du parcours (ex. P-7K3Q9)"),
               Arg("texte", "la décision, telle que vous l'écrivez ; à la fin : pour @compte ou pour <profession>, "
                            "échéance <quand>, objectif <n> (l'objectif du plan personnalisé qu'elle sert)",
                   rest=True)],
         help="Enregistre une décision de la réunion ouverte : une tâche du parcours, liée à la RCP.")
async def _decide(ctx: Context[RcpPorts]) -> Reply:
    found = await _open_meeting(ctx)
    if isinstance(found, Reply):
        return found
    pathway = await ctx.services.pathways.by_code(ctx.args["parcours"])
    store = meetings(ctx.services)
    item = await store.item_of(found.id, pathway.id) if pathway else None
    if pathway is None or item is None:
        return Reply.plain(f"Aucune décision enregistrée : le parcours « {ctx.args['parcours']} » n'est pas à "
                           f"l'ordre du jour de la RCP {found.code} (!rcp ordre {found.code}).")
    if pathway.status != "open":
        return Reply.plain(f"Aucune décision enregistrée : le parcours {pathway.code} est clos.")
    checked = await checked_draft(ctx, pathway, ctx.args["texte"])
    if isinstance(checked, str):
        return Reply.plain(f"Aucune décision enregistrée : {checked}")
    draft, whom = checked.draft, checked.for_whom
    try:
        decision, task, ref = await store.record_decision(found, item, draft, ctx.services.tasks, ctx.sender)
    except UnknownGoal as err:
        return Reply.plain(f"Aucune décision enregistrée : aucun objectif n° {err.number} dans le plan (!ppcs).")
    await ctx.services.boards.changed(pathway)
    if task.goal is not None:
        await ctx.services.plans.changed(pathway)
    await _announce(ctx, pathway, f"Décision de la {heading(found)} : tâche n° {task.number}, {whom}, "
                                  f"{due_text(task)} (✋ pour la prendre, ✅ quand elle est faite) :\n{task.text}",
                    txn_id(ctx.event_id, "rcp-decision"), task=task, path_decision=True)
    return Reply.plain(f"Décision n° {decision.number} ({pathway.code}) : tâche n° {task.number} du parcours, "
                       f"{whom}, {due_text(task)} (trace {ref}). Annoncée dans le salon du patient.")


@rcp.sub("clore", shows="none", en="close", aliases=["cloturer", "terminer", "fermer"], room="coordination",
         args=[Arg("code", "le code de la RCP (la réunion ouverte, sans lui)", required=False)],
         help="Clôt la réunion : le compte rendu de chaque cas va dans le salon de son patient, le compte rendu "
              "pseudonyme à la coordination, et à chaque participant extérieur ce qu'il peut lire.")
async def _close(ctx: Context[RcpPorts]) -> Reply:
    found = await (_meeting(ctx, ctx.args["code"]) if ctx.args.get("code") else _open_meeting(ctx))
    if isinstance(found, Reply):
        return found
    if found.state != "ouverte":
        return Reply.plain(f"La RCP {found.code} est {STATES[found.state]} : seule une réunion ouverte (!rcp ouvrir "
                           f"{found.code}) peut être close.")
    closed = await meetings(ctx.services).close(found, ctx.sender)
    if closed is None:
        return Reply.plain(f"La RCP {found.code} vient d'être close par quelqu'un d'autre.")
    done = await publish(ctx.services, closed)
    refused = f" ; {done.refused} cas non publié(s) (règle de partage, tracée)" if done.refused else ""
    mails = f" ; {done.mails} courriel(s) de compte rendu confié(s) au pont MSSanté" if done.mails else ""
    return Reply.plain(f"{heading(closed)} : close. Compte rendu publié dans {done.rooms} salon(s) de patient"
                       f"{refused}{mails} ; compte rendu pseudonyme ci-dessus (fichier).")


# -- what the sub-commands share ---------------------------------------------------------------------------------

async def _meeting(ctx: Context[RcpPorts], code: str, state: str | None = None) -> Rcp | Reply:
    found = await meetings(ctx.services).by_code(code)
    if found is None:
        return Reply.plain(f"Aucune RCP de code « {code} » (!rcp pour la liste) : rien n'a changé.")
    if state is not None and found.state != state:
        return Reply.plain(f"La RCP {found.code} est {STATES[found.state]} : rien n'a changé.")
    return found


async def _open_meeting(ctx: Context[RcpPorts]) -> Rcp | Reply:
    opened = [r for r in await meetings(ctx.services).coming(ctx.services.clock.now_ms()) if r.state == "ouverte"]
    if not opened:
        return Reply.plain("Aucune RCP ouverte : ouvrez-la d'abord (!rcp ouvrir <code>). Rien n'a changé.")
    if len(opened) > 1:
        codes = ", ".join(r.code for r in opened)
        return Reply.plain(f"Plusieurs RCP sont ouvertes ({codes}) : closez celle qui est finie. Rien n'a changé.")
    return opened[0]


async def _cases(ctx: Context[RcpPorts], r: Rcp) -> str:
    """The agenda as the coordination's room may read it: each case decided for that room."""
    items = await meetings(ctx.services).items(r.id)
    if not items:
        return "Aucun cas inscrit."
    found = await ctx.services.pathways.pathways({i.pathway_id for i in items})
    return "\n".join([item_line(i, found[i.pathway_id].code, await _shown(ctx, found[i.pathway_id]))
                      for i in items])


async def _shown(ctx: Context[RcpPorts], pathway: Pathway) -> bool:
    """A case shown in this command's answer: decided for the room it is read in (`command.show`), traced."""
    return (await may_show(ctx, pathway)).allowed


async def _announce(ctx: Context[RcpPorts], pathway: Pathway, text: str, txn: str, *, task=None,
                    path_decision: bool = False) -> str | None:
    """A post in the patient's clinical room, decided for that room (a decision: `rcp.decision`)."""
    if pathway.room_id is None:
        return None
    bot = ctx.services.matrix.user_id
    if path_decision:
        decided = await decide_at(ctx.services.sharing, "rcp.decision", pathway=pathway, recipient=bot,
                                  actor=ctx.sender, room_kind="clinical")
    else:
        decided = await decide_at(ctx.services.sharing, "rcp.agenda", pathway=pathway, recipient=bot,
                                  actor=ctx.sender, room_kind="clinical")
    if not decided.allowed:
        return None
    event_id = await ctx.services.matrix.send(pathway.room_id, notice(f"{text}\n(trace {decided.trace})"), txn)
    if task is not None:
        await ctx.services.tasks.noticed(task, event_id)
    return event_id


async def _unknown(ctx: Context[RcpPorts], typed: list[str]) -> str | None:
    """Why one of `typed` cannot take part (an account that does not exist, an address that is not one), or None."""
    for word in typed:
        if word.startswith("@"):
            if ":" not in word or await ctx.services.matrix.display_name(word) is None:
                return f"le compte {word} n'existe pas : vérifiez l'identifiant (@nom:serveur)."
        elif not MAIL_ADDRESS.match(word):
            return f"« {word} » n'est ni un compte (@nom:serveur) ni une adresse MSSanté."
        elif ctx.services.trusted is not None and not ctx.services.trusted.trusts(word):
            return (f"{word} n'appartient pas à l'espace de confiance MSSanté (liste blanche) : rien ne lui serait "
                    "envoyé.")
    return None


ALL = [rcp]
