"""`!parcours`: open, list, read, summarise, close and reopen a patient's care pathways."""
from __future__ import annotations


import structlog

from bot.circle import CIRCLE_STATE, ensure_circle, role_categories
from bot.commands import Arg, Audience, Context, Reply, Words, command, fold
from liaison.enforcement import decide_at
from bot.opening import Opener, parse_open
from liaison.pathway_store import SUMMARY_FIELDS, now_ms
from bot.reply import day as _day, room_link, table
from bot.rooms import CIRCLE_NO_CHANGE, circle_categories, may_show, room_kind
from bot.room_specs import power_levels
from liaison.logs import new_ref
from liaison.matrix import MatrixError
from policies.professions import Category

log = structlog.get_logger(__name__)

USAGE = ("!parcours · !parcours ouvrir … · !parcours info · !parcours resume <champ> <texte> · "
         "!parcours inviter @compte · !parcours clore <motif> · !parcours rouvrir · !parcours types")
COORDINATION_ONLY = "Cette action est réservée à la coordination de la structure."
IN_ROOM_ONLY = "Tapez cette commande dans le salon du parcours concerné."


@command("parcours", patient_data=True, en="pathway", who=Audience.STAFF,
         args=[Arg("action", "ouvrir, info, resume, clore, rouvrir, types", required=False),
               Arg("détails", "selon l'action", required=False, rest=True)],
         help="Les parcours de soins : ouvrir, lister, résumé, clore (!aide parcours pour le détail).")
async def parcours(ctx: Context) -> Reply:
    action = fold(ctx.args.get("action") or "")
    words = Words(ctx.args.get("détails") or "")
    handler = _ACTIONS.get(action)
    if handler is None:
        return Reply.plain(f"Action inconnue « {action} ». Utilisation : {USAGE}")
    try:
        return await handler(ctx, words)
    except MatrixError as err:
        ref = new_ref()
        log.warning("pathway.matrix_failed", action=action, ref=ref, error=str(err))
        return Reply.plain(f"Le serveur Matrix n'a pas répondu comme prévu (réf. {ref}). Rien n'est perdu : "
                           "relancez la même commande, elle reprendra là où elle s'est arrêtée.")


async def _list(ctx: Context, words: list[str]) -> Reply:
    rows = await ctx.services.pathways.visible_to(ctx.sender, everything=ctx.is_coordinator)
    if not rows:
        return Reply.plain("Aucun parcours ouvert vous concernant.")
    label = ctx.services.settings.type_label
    data = [(p.code, label(p.type), "ouvert" if p.status == "open" else "clos", room_link(p.room_id))
            for p, _patient in rows]
    text, html = table(["Code", "Type", "État", "Salon"], data)
    return Reply(f"Parcours ({len(rows)}) :\n{text}", f"<p>Parcours ({len(rows)}) :</p>{html}")


async def _types(ctx: Context, words: list[str]) -> Reply:
    types = ctx.services.settings.types
    return Reply.plain("Types de parcours : " + ", ".join(f"{label} ({key})" for key, label in types))


async def _open(ctx: Context, words: list[str]) -> Reply:
    if not ctx.is_coordinator:
        return Reply.plain(COORDINATION_ONLY)
    req = parse_open(words, ctx.services.settings.ins_test_mode, ctx.services.settings.types)
    if isinstance(req, str):
        return Reply.plain(req)
    return await Opener(ctx.services).open(ctx.sender, req)


async def _here(ctx: Context):
    """The pathway whose clinical room this is (and its patient); (None, None) anywhere else."""
    pathway = await ctx.services.pathways.by_room(ctx.room_id)
    if pathway is None or room_kind(pathway, ctx.room_id) != "clinical":
        return None, None
    return pathway, await ctx.services.pathways.patient(pathway.patient_id)


async def _not_here(ctx: Context) -> Reply:
    """Why a pathway action cannot run in this room: the circle room, or a room that is no pathway's."""
    pathway = await ctx.services.pathways.by_room(ctx.room_id)
    return Reply.plain(CIRCLE_NO_CHANGE if room_kind(pathway, ctx.room_id) == "circle" else IN_ROOM_ONLY)


async def _info(ctx: Context, words: list[str]) -> Reply:
    pathway = await ctx.services.pathways.by_room(ctx.room_id)
    if pathway is None:
        return Reply.plain(IN_ROOM_ONLY)
    shown = await may_show(ctx, pathway)
    if not shown.allowed:
        return await _circle_info(ctx, pathway, shown)
    patient = await ctx.services.pathways.patient(pathway.patient_id)
    members = await ctx.services.pathways.members(pathway.id)
    fields = await ctx.services.pathways.summary(pathway.id)
    label = ctx.services.settings.type_label(pathway.type)
    lines = [f"Parcours {label} ({pathway.code}) — {'ouvert' if pathway.status == 'open' else 'clos'}",
             f"Patient : {patient.birth_name.upper()} {patient.first_names}, né(e) le {patient.birth_date:%d/%m/%Y}",
             f"Ouvert le {_day(pathway.opened_at)} par {pathway.opened_by}"]
    if pathway.closed_at:
        lines.append(f"Clos le {_day(pathway.closed_at)} ; conservation jusqu'au {_day(pathway.retention_until)}")
    lines.append("Équipe : " + ", ".join(f"{u} ({state})" for u, state, _rule in members))
    lines += [f"{name} : {fields.get(key, ('—', 0))[0]}" for key, name in SUMMARY_FIELDS.items()]
    return Reply.plain("\n".join(lines))


async def _circle_info(ctx: Context, pathway, refused) -> Reply:
    """In the circle room: who is in the circle and what it shares, nothing clinical."""
    shared = ", ".join(sorted(await circle_categories(ctx.services, pathway))) or "—"
    names = []
    for user_id, state, _ in await ctx.services.pathways.members(pathway.id):
        if state in ("invited", "joined", CIRCLE_STATE):
            member = await ctx.services.roster.get(user_id)
            names.append(f"{member.display_name} ({member.profession.label})" if member else user_id)
    return Reply.plain(f"Cercle élargi du parcours {pathway.code}. Catégories d'informations partagées ici : "
                       f"{shared}. Membres : {', '.join(names) or '—'}.\n{refused.sentence()}.")


async def _summary(ctx: Context, words: list[str]) -> Reply:
    pathway, patient = await _here(ctx)
    if pathway is None:
        return await _not_here(ctx)
    if len(words) < 2 or fold(words[0]) not in SUMMARY_FIELDS:
        return Reply.plain("Utilisation : !parcours resume <champ> <texte> ; champs : " + ", ".join(SUMMARY_FIELDS))
    if pathway.status != "open":
        return Reply.plain("Ce parcours est clos : rouvrez-le d'abord (!parcours rouvrir).")
    field = fold(words[0])
    version = await ctx.services.pathways.set_summary(pathway.id, field, words.rest(1), ctx.sender)
    await Opener(ctx.services).post_current_summary(pathway)
    return Reply.plain(f"Résumé mis à jour : {SUMMARY_FIELDS[field]} (version {version}), nouveau résumé épinglé.")


async def _coordinated_here(ctx: Context):
    """The pathway of this room, or the reason the coordination action cannot run here."""
    if not ctx.is_coordinator:
        return None, Reply.plain(COORDINATION_ONLY)
    pathway, _ = await _here(ctx)
    return pathway, None if pathway else await _not_here(ctx)


async def _close(ctx: Context, words: list[str]) -> Reply:
    pathway, refusal = await _coordinated_here(ctx)
    if refusal:
        return refusal
    if pathway.status != "open":
        return Reply.plain("Ce parcours est déjà clos.")
    if not words:
        return Reply.plain("Indiquez le motif : !parcours clore <motif>.")
    s = ctx.services.settings
    until = now_ms() + s.retention_days * 86_400_000
    await ctx.services.matrix.set_state(ctx.room_id, "m.room.power_levels", await _levels(ctx, closed=True))
    await ctx.services.pathways.update(pathway.id, status="closed", closed_by=ctx.sender, closed_at=now_ms(),
                                       close_reason=words.rest(0), retention_until=until)
    return Reply.plain(f"Parcours clos. Le salon passe en lecture seule pour les membres ; il est conservé jusqu'au "
                       f"{_day(until)} puis archivé. La coordination peut le rouvrir d'ici là (!parcours rouvrir).")


async def _reopen(ctx: Context, words: list[str]) -> Reply:
    pathway, refusal = await _coordinated_here(ctx)
    if refusal:
        return refusal
    if pathway.status != "closed":
        return Reply.plain("Ce parcours n'est pas clos.")
    if pathway.retention_until and now_ms() > pathway.retention_until:
        return Reply.plain("Le délai de conservation est dépassé : ce parcours ne peut plus être rouvert.")
    if await ctx.services.pathways.in_progress(pathway.patient_id, pathway.type):
        return Reply.plain("Un autre parcours du même type est déjà ouvert pour ce patient.")
    await ctx.services.matrix.set_state(ctx.room_id, "m.room.power_levels", await _levels(ctx, closed=False))
    await ctx.services.pathways.update(pathway.id, status="open", closed_by=None, closed_at=None, close_reason=None,
                                       retention_until=None)
    return Reply.plain("Parcours rouvert : chacun peut de nouveau écrire dans le salon.")


async def _invite(ctx: Context, words: list[str]) -> Reply:
    """J2: someone outside the team joins only once a consent covering them is recorded."""
    pathway, _ = await _here(ctx)
    if pathway is None:
        return await _not_here(ctx)
    if not words or not words[0].startswith("@") or ":" not in words[0]:
        return Reply.plain("Utilisation : !parcours inviter @compte:serveur")
    if pathway.status != "open":
        return Reply.plain("Ce parcours est clos : rouvrez-le d'abord (!parcours rouvrir).")
    user_id = words[0]
    member = await ctx.services.roster.get(user_id)
    non_health = member is not None and member.profession.category is not Category.HEALTH and not member.coordinator
    categories = role_categories(ctx.services, member.profession.key) if non_health else ["soins"]
    decided = await decide_at(ctx.services, "room.invite", pathway=pathway, recipient=user_id, actor=ctx.sender,
                              categories=categories)
    decision = decided.decision
    if not decision.allowed:
        return Reply.plain(f"Invitation refusée : {decided.sentence()}.")
    if await ctx.services.matrix.display_name(user_id) is None:
        return Reply.plain(f"Le compte {user_id} n'existe pas : vérifiez l'identifiant.")
    if non_health:   # R.1110-2: never in the clinical room, only in the circle room
        room, state = await ensure_circle(ctx.services, pathway, user_id), CIRCLE_STATE
        where = f"au cercle élargi ({', '.join(categories)}) : {room_link(room)}"
    else:
        await ctx.services.matrix.invite(pathway.room_id, user_id)
        state, where = "invited", "au salon clinique"
    await ctx.services.pathways.set_member(pathway.id, user_id, state, decision.rule)
    return Reply.plain(f"{user_id} est invité(e) {where} — {decided.sentence()}.")


async def _levels(ctx: Context, closed: bool) -> dict:
    coordinators = [m.user_id for m in await ctx.services.roster.members() if m.coordinator]
    return power_levels(ctx.services.settings.bot_user_id, coordinators, closed=closed)




_ACTIONS = {
    "": _list, "liste": _list, "list": _list,
    "ouvrir": _open, "open": _open,
    "info": _info, "infos": _info,
    "resume": _summary, "summary": _summary,
    "clore": _close, "close": _close, "fermer": _close,
    "rouvrir": _reopen, "reopen": _reopen,
    "types": _types,
    "inviter": _invite, "invite": _invite,
}

ALL = [parcours]
