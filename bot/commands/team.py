"""`!equipe`: the structure's roster, read by all, changed by the coordination."""
from __future__ import annotations

from typing import Protocol

from bot.arguments import account_or_address
from bot.directory_lookup import RPPS, DirectoryPorts, Named, describe, one
from bot.facts_changed import ChangePorts, correspondent_changed, member_changed
from bot.ports import RosterPort
from bot.registry import MAIL_ADDRESS, Arg, ArgError, Audience, Context, Reply, Words, group
from bot.reply import table
from liaison.stores.directory import Entry
from policies.professions import (Category, Profession, ProfessionalIdError, check_professional_id, find_profession,
                                  written_sex)


class TeamPorts(ChangePorts, DirectoryPorts, Protocol):
    """What `!equipe` reads and changes: the roster, the recorded correspondents, the homeserver's display names;
    what a change of those facts re-decides (bot/facts_changed.py); and the directory (profession, structure and
    RPPS of someone named by RPPS or by name)."""


equipe = group("equipe", en="team", who=Audience.STAFF, default="liste",
               help="L'équipe de la structure : liste, ajout et retrait (coordination).")
WHO = Arg("qui", "le compte Matrix (@nom:serveur), ou l'adresse MSSanté d'un correspondant extérieur",
          parse=account_or_address)


@equipe.sub("liste", en="list", help="Les membres de l'équipe, par catégorie.")
async def _listing(ctx: Context[TeamPorts]) -> Reply:
    return await _list(ctx.services.roster)


@equipe.sub("historique", en="history", help="Les dernières modifications de l'équipe.")
async def _history(ctx: Context[TeamPorts]) -> Reply:
    rows = await ctx.services.roster.changes()
    lines = [f"{r['user_id']} : {r['action']} ({r['profession'] or '—'}) par {r['actor']}" for r in rows]
    return Reply.plain("Dernières modifications de l'équipe :\n" + ("\n".join(lines) or "aucune"))


NOT_WHO = "« {typed} » : indiquez le compte Matrix (@nom:serveur) ou l'adresse MSSanté."


def _who_or_named(word: str) -> str | Named:
    """A Matrix account, an MSSanté address (lower-cased), or an RPPS or a name to look up in the directory."""
    if MAIL_ADDRESS.match(word) or (word.startswith("@") and ":" in word):
        return account_or_address(word)
    if "@" in word:
        raise ArgError(NOT_WHO.format(typed=word))
    return Named(word)


@equipe.sub("ajouter", en="add", who=Audience.COORDINATOR,
            args=[Arg("qui", "le compte Matrix (@nom:serveur), l'adresse MSSanté d'un correspondant extérieur, ou son "
                             "n° RPPS ou son nom dans l'annuaire santé (entre guillemets s'il a plusieurs mots)",
                      parse=_who_or_named),
                  Arg("profession", "la profession, en un ou plusieurs mots ; pour un compte, puis le n° RPPS ou "
                                    "ADELI (la profession et la structure de l'annuaire santé à défaut) et "
                                    "« coordination » ; pour une adresse, puis structure:Nom ; pour un n° RPPS ou "
                                    "un nom : celles de l'annuaire à défaut", required=False, rest=True)],
            help="Ajoute un membre à l'équipe, ou un correspondant MSSanté connu de la structure (par son adresse, "
                 "son n° RPPS ou son nom dans l'annuaire santé).")
async def _adding(ctx: Context[TeamPorts]) -> Reply:
    who, words = ctx.args["qui"], Words(ctx.args.get("profession", ""))
    if isinstance(who, Named):
        return await _directory_add(ctx, who, words)
    if not words:
        return Reply.plain(f"!equipe ajouter : il manque : profession. Utilisation : {ctx.usage}")
    if not who.startswith("@"):
        return await _external_add(ctx, who, words)
    return await _add(ctx, who, list(words))


@equipe.sub("retirer", en="remove", who=Audience.COORDINATOR, args=[WHO],
            help="Retire un membre de l'équipe, ou un correspondant MSSanté.")
async def _removing(ctx: Context[TeamPorts]) -> Reply:
    who = ctx.args["qui"]
    if not who.startswith("@"):
        done = await ctx.services.contacts.remove(who, actor=ctx.sender)
        if not done:
            return Reply.plain(f"{who} n'est pas un correspondant connu de la structure.")
        removed = await correspondent_changed(ctx.services, who, ctx.sender)
        return Reply.plain(f"{who} n'est plus un correspondant connu de la structure." + _rooms_left(removed))
    was = await ctx.services.roster.get(who)
    if await ctx.services.roster.remove(who, actor=ctx.sender):
        removed = await member_changed(ctx.services, who, ctx.sender, coordination=bool(was and was.coordinator))
        return Reply.plain(f"{who} ne fait plus partie de l'équipe (modification tracée)." + _rooms_left(removed))
    return Reply.plain(f"{who} ne fait pas partie de l'équipe.")


def profession_of(words: list[str]) -> tuple[Profession | None, int]:
    """The profession the first words name (« assistante sociale », « infirmier en pratique avancée »), and how many
    words it took: the longest that names one."""
    for n in range(min(6, len(words)), 0, -1):
        found = find_profession(" ".join(words[:n]))
        if found is not None:
            return found, n
    return None, 0


async def _add(ctx: Context[TeamPorts], user_id: str, words: list[str]) -> Reply:
    profession, used = profession_of(words)
    found = await _by_rpps(ctx, next((w for w in words if RPPS.match(w)), ""))
    if profession is None and found is not None and words[0] == found.rpps:   # `!equipe ajouter @x:hs <RPPS>`
        if found.profession is None:
            return Reply.plain(f"{describe(found)} : sa profession dans l'annuaire santé n'est pas une de celles que "
                               f"Liaison connaît ; précisez-la : !equipe ajouter {user_id} <profession> {found.rpps}")
        profession = found.profession
    coordinator = any(w.casefold() in ("coordination", "coordinateur", "coordinatrice") for w in words[used:])
    rest = [w for w in words[used:] if w.casefold() not in ("coordination", "coordinateur", "coordinatrice")]
    if profession is None and RPPS.match(words[0]):
        return Reply.plain(f"Aucun professionnel de RPPS {words[0]} dans l'annuaire santé : précisez la profession "
                           f"(!equipe ajouter {user_id} <profession> {words[0]}).")
    if profession is None:
        return Reply.plain(f"Profession inconnue « {' '.join(words[:1])} » (exemples : médecin, infirmier, "
                           f"pharmacien, kiné, assistante sociale). Utilisation : {ctx.usage}")
    professional_id = ""
    if rest:
        try:
            professional_id = check_professional_id(rest[0])[1]
        except ProfessionalIdError as err:
            return Reply.plain(f"Numéro RPPS/ADELI refusé : {err.message}")
    name = await ctx.services.matrix.display_name(user_id)
    if name is None:
        return Reply.plain(f"Le compte {user_id} n'existe pas sur le serveur : vérifiez l'identifiant.")
    # « infirmière » says she is a woman; « infirmier » says nothing, and keeps what the roster knew
    known = await ctx.services.roster.get(user_id)
    sex = written_sex(" ".join(words[:used])) or (known.sex if known else "")
    structure = (found.structure or "") if found is not None else ""
    changed = await ctx.services.roster.upsert(user_id, name, profession, actor=ctx.sender,
                                                professional_id=professional_id, coordinator=coordinator, sex=sex,
                                                structure=structure)
    # A new profession, or a role lost: the rooms they are in are decided again with the new facts
    removed = await member_changed(ctx.services, user_id, ctx.sender,
                                   coordination=known.coordinator != coordinator) if changed and known else 0
    what = "ajouté(e) à l'équipe" if changed else "déjà dans l'équipe, sans changement"
    role = ", coordination" if coordinator else ""
    hint = "" if coordinator or profession.key != "coordinateur" else (
        " Sans le rôle de coordination : pour le donner, ajoutez « coordination » à la fin de la commande.")
    said = f" Annuaire santé : {describe(found)}." if found is not None else ""
    return Reply.plain(f"{name} ({user_id}), {profession.label_for(sex)}{role} : {what}.{said}{hint}"
                       f"{_rooms_left(removed)}")


async def _by_rpps(ctx: Context[TeamPorts], rpps: str) -> Entry | None:
    """The directory's entry of an RPPS typed after an account (its first activity), if the directory has it."""
    directory = ctx.services.directory
    found = await directory.by_id(rpps) if directory is not None and rpps else []
    return next((e for e in found if e.mailbox), found[0] if found else None)


async def _directory_add(ctx: Context[TeamPorts], named: Named, words: Words) -> Reply:
    """Someone named by RPPS or by name: an external correspondent at the directory's MSSanté address, with its
    profession and structure unless typed (the team's members are added by their Matrix account)."""
    found = await one(ctx, named, base=NOT_WHO.format(typed=named.typed), again="!equipe ajouter {rpps}")
    if isinstance(found, Reply):
        return found
    if not found.mailbox:
        return Reply.plain(f"{describe(found)} : l'annuaire santé ne lui connaît pas d'adresse MSSanté. Rien n'a été "
                           f"fait. Pour un membre de l'équipe : !equipe ajouter @compte {found.rpps or '<RPPS>'}.")
    if not words and found.profession is None:
        return Reply.plain(f"{describe(found)} : sa profession dans l'annuaire santé n'est pas une de celles que "
                           f"Liaison connaît ; précisez-la : !equipe ajouter {found.rpps or named.typed} <profession>")
    return await _external_add(ctx, found.mailbox, words, found)


def _rooms_left(count: int) -> str:
    return f" Retiré(e) des salons de {count} parcours où la loi ne l'admet plus." if count else ""


async def _external_add(ctx: Context[TeamPorts], address: str, words: Words, found: Entry | None = None) -> Reply:
    """An external MSSanté professional: their profession and structure become facts of every sharing decision
    about their address (an objection or a consent by profession or structure reaches them). `found`: their
    directory entry, whose name, profession and structure stand where nothing is typed."""
    rest, structure = words.text, ""
    if "structure:" in rest:
        rest, _, structure = rest.partition("structure:")
    structure = structure.strip() or ((found.structure or "") if found else "")
    profession = profession_of(rest.split())[0] if rest.strip() or not found else found.profession
    if profession is None:
        return Reply.plain(f"Profession inconnue « {rest.strip()} » (exemples : médecin, pharmacien, infirmier, "
                           f"kiné). Utilisation : {ctx.usage}")
    await ctx.services.contacts.upsert(address, name=found.name if found else "", profession=profession,
                                       structure=structure, actor=ctx.sender)
    removed = await correspondent_changed(ctx.services, address, ctx.sender)
    where = f", {structure}" if structure else ""
    who = f"{found.name}, " if found else ""
    said = f" (annuaire santé{f', RPPS {found.rpps}' if found.rpps else ''})" if found else ""
    return Reply.plain(f"Correspondant MSSanté {address}{said} : {who}{profession.label}{where}. Les consentements et "
                       "oppositions par profession ou par structure s'appliquent désormais à cette adresse."
                       + _rooms_left(removed))


async def _list(roster: RosterPort) -> Reply:
    members = await roster.members()
    if not members:
        return Reply.plain("L'équipe est vide. La coordination ajoute des membres avec !equipe ajouter.")
    rows = []
    for cat in Category:
        for m in (m for m in members if m.profession.category is cat):
            rows.append((m.display_name, m.profession_label + (" · coordination" if m.coordinator else ""),
                         cat.value, m.user_id))
    text, html = table(["Nom", "Profession", "Catégorie", "Compte"], rows)
    return Reply(f"Équipe de la structure ({len(members)}) :\n{text}",
                 f"<p>Équipe de la structure ({len(members)}) :</p>{html}")


ALL = [equipe]
