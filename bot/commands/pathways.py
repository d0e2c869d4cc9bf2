"""`!parcours`: open, list, read, summarise, close and reopen a patient's care pathways."""
from __future__ import annotations

import json
from html import escape
from typing import Any, Protocol

from bot.directory_lookup import NOT_ACCOUNT, DirectoryPorts, Named, account_or_named, describe, one
from bot.circle import CIRCLE_STATE, CirclePorts, ensure_circle, role_categories
from bot.registry import Arg, ArgError, Audience, Context, Reply, fold, group
from bot.members import member_lines, names as member_names, person
from liaison.enforcement import decide_at
from bot.opening import FORM, Opener, OpenerPorts, request
from liaison.clock import Clock
from liaison.enforcement import Decided
from liaison.fhir_export import ExportPorts, bundle, counts, gather
from liaison.matrix import txn_id
from liaison.stores.pathways import SUMMARY_FIELDS, Pathway
from liaison.stores.care_plan import CarePlanStore
from liaison.stores.tasks import TaskStore
from bot.care_plan_post import CarePlanPost
from bot.reply import day as _day, room_link, table
from bot.rooms import ShowPorts, circle_categories, may_show
from bot.room_specs import power_levels
from policies.gender import born
from policies.professions import Category

class PathwayPorts(OpenerPorts, ShowPorts, CirclePorts, ExportPorts, DirectoryPorts, Protocol):
    """What `!parcours` reads and does: the opening, what a room may show, the circle room, the clock, the
    tasks a closing cancels, the care plan it closes, what an export reads, and the directory (an invitation by
    RPPS or by name)."""
    @property
    def clock(self) -> Clock: ...
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def care_plans(self) -> CarePlanStore: ...
    @property
    def plans(self) -> CarePlanPost: ...


parcours = group("parcours", patient_data=True, en="pathway", who=Audience.STAFF, default="liste",
                 help="Les parcours de soins : ouvrir, lister, résumé, inviter, clore (!aide parcours pour le détail).")


def summary_field(word: str) -> str:
    if fold(word) in SUMMARY_FIELDS:
        return fold(word)
    raise ArgError(f"champ « {word} » inconnu ; champs : {', '.join(SUMMARY_FIELDS)}.")


@parcours.sub("liste", en="list", room=("direct", "coordination"), shows="items",
              help="Les parcours qui vous concernent (tous, pour la coordination).")
async def _list(ctx: Context[PathwayPorts]) -> Reply:
    """Each pathway shown is decided for this room (a direct conversation: what the one who asks may see)."""
    rows = await ctx.services.pathways.visible_to(ctx.sender, everything=ctx.is_coordinator)
    shown = [p for p, _patient in rows if (await may_show(ctx, p)).allowed]
    if not shown:
        return Reply.plain("Aucun parcours ouvert vous concernant.")
    label = ctx.services.settings.type_label
    data = [(p.code, label(p.type), "ouvert" if p.status == "open" else "clos", room_link(p.room_id) if p.room_id else "—")
            for p in shown]
    text, html = table(["Code", "Type", "État", "Salon"], data)
    hidden = len(rows) - len(shown)
    note = (f"\n{hidden} autre(s) parcours non montré(s) : la règle de partage ne vous les montre pas (une "
            "opposition du patient, par exemple)." if hidden else "")
    return Reply(f"Parcours ({len(shown)}) :\n{text}{note}", f"<p>Parcours ({len(shown)}) :</p>{html}"
                 + (f"<p>{escape(note.strip())}</p>" if note else ""))


@parcours.sub("ouvrir", en="open", who=Audience.COORDINATOR, form=FORM, shows="none",
              help="Ouvre un parcours : l'espace du patient et son salon chiffré, l'équipe invitée.")
async def _open(ctx: Context[PathwayPorts]) -> Reply:
    req = request(ctx.args, ctx.services.settings.ins_test_mode, ctx.services.settings.types)
    if isinstance(req, str):
        return Reply.plain(f"{req} (utilisation : {ctx.usage})")
    return await Opener(ctx.services).open(ctx.sender, req)


@parcours.sub("info", en="info", aliases=["infos", "detail"], room=("pathway", "circle"), shows="items",
              help="Le parcours de ce salon : patient, équipe, résumé.")
async def _info(ctx: Context[PathwayPorts]) -> Reply:
    pathway = ctx.room_pathway
    shown = await may_show(ctx, pathway)
    if not shown.allowed:
        return await _circle_info(ctx, pathway, shown)
    patient = await ctx.services.pathways.patient(pathway.patient_id)
    members = await ctx.services.pathways.members(pathway.id)
    fields = await ctx.services.pathways.summary(pathway.id)
    label = ctx.services.settings.type_label(pathway.type)
    lines = [f"Parcours {label} ({pathway.code}) — {'ouvert' if pathway.status == 'open' else 'clos'}",
             f"Patient : {patient.birth_name.upper()} {patient.first_names}, {born(patient.sex)} le "
             f"{patient.birth_date:%d/%m/%Y}",
             f"Ouvert le {_day(pathway.opened_at)} par {(await person(ctx.services, pathway.opened_by)).text()}"]
    if pathway.closed_at:
        lines.append(f"Clos le {_day(pathway.closed_at)} ; conservation jusqu'au {_day(pathway.retention_until)}")
    team_text, team_html = await member_lines(ctx.services, members)
    summary = [f"{name} : {fields.get(key, ('—', 0))[0]}" for key, name in SUMMARY_FIELDS.items()]
    text = "\n".join([*lines, "Équipe :", *team_text, *summary])
    html = ("".join(f"<p>{escape(line)}</p>" for line in lines) + f"<p>Équipe :</p><ul>{team_html}</ul>"
            + "".join(f"<p>{escape(line)}</p>" for line in summary))
    return Reply(text, html)


async def _circle_info(ctx: Context[PathwayPorts], pathway: Pathway, refused: Decided) -> Reply:
    """In the circle room: who is in the circle and what it shares, nothing clinical."""
    shared = ", ".join(sorted(await circle_categories(ctx.services, pathway))) or "—"
    members = [u for u, state, _ in await ctx.services.pathways.members(pathway.id)
               if state in ("invited", "joined", CIRCLE_STATE)]
    names = await member_names(ctx.services, members)
    return Reply.plain(f"Cercle élargi du parcours {pathway.code}. Catégories d'informations partagées ici : "
                       f"{shared}. Membres : {', '.join(names) or '—'}.\n{refused.sentence()}.")


@parcours.sub("resume", en="summary", room="pathway", open=True,
              args=[Arg("champ", ", ".join(SUMMARY_FIELDS), parse=summary_field),
                    Arg("texte", "le texte, tel que vous l'écrivez", rest=True)],
              help="Met à jour un champ du résumé du parcours et épingle le nouveau résumé.")
async def _summary(ctx: Context[PathwayPorts]) -> Reply:
    pathway = ctx.room_pathway
    field = ctx.args["champ"]
    version = await ctx.services.pathways.set_summary(pathway.id, field, ctx.args["texte"], ctx.sender)
    await Opener(ctx.services).post_current_summary(pathway)
    return Reply.plain(f"Résumé mis à jour : {SUMMARY_FIELDS[field]} (version {version}), nouveau résumé épinglé.")


@parcours.sub("clore", en="close", aliases=["fermer"], who=Audience.COORDINATOR, room="pathway",
              args=[Arg("motif", "pourquoi le parcours se termine", rest=True)],
              help="Clôt le parcours : le salon passe en lecture seule, puis est archivé après la conservation.")
async def _close(ctx: Context[PathwayPorts]) -> Reply:
    pathway = ctx.room_pathway
    if pathway.status != "open":
        return Reply.plain("Ce parcours est déjà clos.")
    s = ctx.services.settings
    now = ctx.services.clock.now_ms()
    until = now + s.retention_days * 86_400_000
    await ctx.services.matrix.set_state(ctx.room_id, "m.room.power_levels", await _levels(ctx, closed=True))
    await ctx.services.pathways.update(pathway.id, status="closed", closed_by=ctx.sender, closed_at=now,
                                       close_reason=ctx.args["motif"], retention_until=until)
    cancelled = [t.number for t in await ctx.services.tasks.of_pathway(pathway.id)
                 if t.open and await ctx.services.tasks.cancel(t, ctx.sender) is not None]
    tasks = (f" Tâches ouvertes annulées avec lui : n° {', '.join(map(str, cancelled))} (leur historique reste)."
             if cancelled else "")
    goals = await ctx.services.care_plans.close(pathway.id, ctx.sender)
    if goals is not None:   # the pinned plan says it is closed (the pathway read before the closing: still open)
        await ctx.services.plans.changed(pathway)
        tasks += (f" Plan personnalisé clos, objectifs en cours clos : n° {', '.join(map(str, goals))}." if goals
                  else " Plan personnalisé clos.")
    return Reply.plain(f"Parcours clos. Le salon passe en lecture seule pour les membres ; il est conservé jusqu'au "
                       f"{_day(until)} puis archivé. La coordination peut le rouvrir d'ici là (!parcours rouvrir)."
                       + tasks)


@parcours.sub("rouvrir", en="reopen", who=Audience.COORDINATOR, room="pathway", help="Rouvre un parcours clos.")
async def _reopen(ctx: Context[PathwayPorts]) -> Reply:
    pathway = ctx.room_pathway
    if pathway.status != "closed":
        return Reply.plain("Ce parcours n'est pas clos.")
    if pathway.retention_until and ctx.services.clock.now_ms() > pathway.retention_until:
        return Reply.plain("Le délai de conservation est dépassé : ce parcours ne peut plus être rouvert.")
    if await ctx.services.pathways.in_progress(pathway.patient_id, pathway.type):
        return Reply.plain("Un autre parcours du même type est déjà ouvert pour ce patient.")
    await ctx.services.matrix.set_state(ctx.room_id, "m.room.power_levels", await _levels(ctx, closed=False))
    await ctx.services.pathways.update(pathway.id, status="open", closed_by=None, closed_at=None, close_reason=None,
                                       retention_until=None)
    await ctx.services.care_plans.reopen(pathway.id)   # its goals closed with it stay closed
    return Reply.plain("Parcours rouvert : chacun peut de nouveau écrire dans le salon.")


@parcours.sub("inviter", en="invite", room="pathway", open=True,
              args=[Arg("compte", "@nom:serveur, ou le n° RPPS ou le nom dans l'annuaire santé d'un membre de l'équipe "
                                  "(entre guillemets s'il a plusieurs mots)", parse=account_or_named)],
              help="Invite quelqu'un au parcours, si la loi le permet (équipe de soins, ou consentement recueilli).")
async def _invite(ctx: Context[PathwayPorts]) -> Reply:
    """J2: someone outside the team joins only once a consent covering them is recorded."""
    pathway = ctx.room_pathway
    user_id, said = ctx.args["compte"], ""
    if isinstance(user_id, Named):
        found = await _account(ctx, user_id)
        if isinstance(found, Reply):
            return found
        said = f"« {user_id.typed} » (annuaire santé) : {found}.\n"
        user_id = found
    if await ctx.services.matrix.display_name(user_id) is None:   # before deciding: nothing is traced for no one
        return Reply.plain(f"Le compte {user_id} n'existe pas : vérifiez l'identifiant.")
    member = await ctx.services.roster.get(user_id)
    non_health = member is not None and member.profession.category is not Category.HEALTH and not member.coordinator
    categories = role_categories(ctx.services, member.profession.key) if member and non_health else ["soins"]
    decided = await decide_at(ctx.services.sharing, "room.invite", pathway=pathway, recipient=user_id, actor=ctx.sender,
                              categories=categories)
    decision = decided.decision
    if not decision.allowed:
        return Reply.plain(f"{said}Invitation refusée : {decided.sentence()}.")
    if non_health:   # R.1110-2: never in the clinical room, only in the circle room
        room, state = await ensure_circle(ctx.services, pathway, user_id), CIRCLE_STATE
        where = f"au cercle élargi ({', '.join(categories)}) : {room_link(room)}"
    else:
        await ctx.services.matrix.invite(ctx.room_id, user_id)   # typed in the clinical room (room="pathway")
        state, where = "invited", "au salon clinique"
    await ctx.services.pathways.set_member(pathway.id, user_id, state, decision.rule)
    who = await person(ctx.services, user_id)
    return Reply.plain(f"{said}{who.text()} est invité(e) {where} — {decided.sentence()}.")


async def _account(ctx: Context[PathwayPorts], named: Named) -> str | Reply:
    """The account of the team member an RPPS or a name names in the directory (by the RPPS the roster holds)."""
    found = await one(ctx, named, base=NOT_ACCOUNT.format(typed=named.typed), again="!parcours inviter {rpps}")
    if isinstance(found, Reply):
        return found
    ids = {found.rpps, found.national_id} - {None, ""}
    member = next((m for m in await ctx.services.roster.members() if m.professional_id in ids), None)
    if member is None:
        return Reply.plain(f"{describe(found)} : pas de compte Matrix dans l'équipe de la structure à ce n° RPPS. "
                           f"Rien n'a été fait. Pour lui écrire par MSSanté : !mss ecrire {found.rpps or '<RPPS>'} …")
    return member.user_id


async def _levels(ctx: Context[PathwayPorts], closed: bool) -> dict[str, Any]:
    coordinators = [m.user_id for m in await ctx.services.roster.members() if m.coordinator]
    s = ctx.services.settings
    return power_levels(s.bot_user_id, coordinators, closed=closed, bridge=s.bridge_user_id)


@parcours.sub("export", en="export", room="coordination",
              args=[Arg("parcours", "le code du parcours (ex. P-7K3Q9)")],
              help="Exporte un parcours en FHIR R4 (fichier JSON chiffré) : patient, équipe, plan, tâches, "
                   "consentements et oppositions, index des documents (sans leur contenu).")
async def _export(ctx: Context[PathwayPorts]) -> Reply:
    """Decided (pathway.export) once the Bundle is built, just before it is sent: what is sent is what was decided."""
    code = ctx.args["parcours"].strip().upper()
    pathway = await ctx.services.pathways.by_code(code)
    if pathway is None:   # before deciding: nothing is traced for no pathway
        return Reply.plain(f"Aucun parcours de code « {ctx.args['parcours']} » (!parcours liste pour la liste).")
    facts = await gather(ctx.services, pathway, ctx.services.settings.type_label(pathway.type))
    exported = bundle(facts, ctx.services.clock.now())
    decided = await decide_at(ctx.services.sharing, "pathway.export", pathway=pathway, recipient=ctx.sender,
                              actor=ctx.sender)
    if not decided.allowed:
        return Reply.plain(f"Export refusé : {decided.sentence()}.")
    data = json.dumps(exported, ensure_ascii=False, indent=1).encode()
    await ctx.services.matrix.send_file(ctx.room_id, data, f"parcours-{pathway.code}.fhir.json", "application/fhir+json",
                                        txn_id(ctx.event_id, "fhir-export"))
    shown = ", ".join(f"{kind} {n}" for kind, n in sorted(counts(exported).items()))
    return Reply.plain(f"Parcours {pathway.code} exporté en FHIR R4 (Bundle « collection », fichier JSON chiffré "
                       f"joint) : {shown}. {decided.sentence()}.")


@parcours.sub("types", en="types", shows="none", help="Les types de parcours de la structure.")
async def _types(ctx: Context[PathwayPorts]) -> Reply:
    types = ctx.services.settings.types
    return Reply.plain("Types de parcours : " + ", ".join(f"{label} ({key})" for key, label in types))


ALL = [parcours]
