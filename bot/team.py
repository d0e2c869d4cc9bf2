"""`!equipe`: the structure's roster, read by all, changed by the coordination."""
from __future__ import annotations


from bot.commands import MAIL_ADDRESS, Arg, Audience, Context, Reply, Words, command
from bot.reply import table
from policies.professions import Category, Profession, ProfessionalIdError, check_professional_id, find_profession

USAGE = ("!equipe (liste) · !equipe ajouter @compte:serveur <profession> [RPPS/ADELI] [coordination] · "
         "!equipe ajouter <adresse MSSanté> <profession> [structure:Nom] · "
         "!equipe retirer <@compte:serveur | adresse> · !equipe historique")


@command("equipe", en="team", who=Audience.STAFF,
         args=[Arg("action", "ajouter, retirer, historique", required=False),
               Arg("détails", "le compte, la profession…", required=False, rest=True)],
         help="L'équipe de la structure : liste, ajout et retrait (coordination).")
async def equipe(ctx: Context) -> Reply:
    action = (ctx.args.get("action") or "").casefold()
    words = Words(ctx.args.get("détails") or "")
    roster = ctx.services.roster
    if not action:
        return await _list(roster)
    if action in ("historique", "history"):
        rows = await roster.changes()
        lines = [f"{r['user_id']} : {r['action']} ({r['profession'] or '—'}) par {r['actor']}" for r in rows]
        return Reply.plain("Dernières modifications de l'équipe :\n" + ("\n".join(lines) or "aucune"))
    if action not in ("ajouter", "add", "retirer", "remove"):
        return Reply.plain(f"Action inconnue « {action} ». Utilisation : {USAGE}")
    if not ctx.is_coordinator:
        return Reply.plain("Modifier l'équipe est réservé à la coordination de la structure.")
    if words and MAIL_ADDRESS.match(words[0]):
        return await _external(ctx, action, words)
    if not words or not words[0].startswith("@") or ":" not in words[0]:
        return Reply.plain(f"Indiquez le compte Matrix (@nom:serveur) ou l'adresse MSSanté. Utilisation : {USAGE}")
    user_id = words[0]
    if action in ("retirer", "remove"):
        if await roster.remove(user_id, actor=ctx.sender):
            return Reply.plain(f"{user_id} ne fait plus partie de l'équipe (modification tracée).")
        return Reply.plain(f"{user_id} ne fait pas partie de l'équipe.")
    return await _add(ctx, user_id, words[1:])


def profession_of(words: list[str]) -> tuple[Profession | None, int]:
    """The profession the first words name (« assistante sociale », « infirmier en pratique avancée »), and how many
    words it took: the longest that names one."""
    for n in range(min(6, len(words)), 0, -1):
        found = find_profession(" ".join(words[:n]))
        if found is not None:
            return found, n
    return None, 0


async def _add(ctx: Context, user_id: str, words: list[str]) -> Reply:
    profession, used = profession_of(words)
    coordinator = any(w.casefold() in ("coordination", "coordinateur", "coordinatrice") for w in words[used:])
    rest = [w for w in words[used:] if w.casefold() not in ("coordination", "coordinateur", "coordinatrice")]
    if profession is None:
        return Reply.plain(f"Profession inconnue « {' '.join(words[:1])} » (exemples : médecin, infirmier, "
                           "pharmacien, kiné, assistante sociale). Utilisation : " + USAGE)
    professional_id = ""
    if rest:
        try:
            professional_id = check_professional_id(rest[0])[1]
        except ProfessionalIdError as err:
            return Reply.plain(f"Numéro RPPS/ADELI refusé : {err.message}")
    name = await ctx.services.matrix.display_name(user_id)
    if name is None:
        return Reply.plain(f"Le compte {user_id} n'existe pas sur le serveur : vérifiez l'identifiant.")
    changed = await ctx.services.roster.upsert(user_id, name, profession, actor=ctx.sender,
                                                professional_id=professional_id, coordinator=coordinator)
    what = "ajouté(e) à l'équipe" if changed else "déjà dans l'équipe, sans changement"
    return Reply.plain(f"{name} ({user_id}), {profession.label} : {what}.")


async def _external(ctx: Context, action: str, words: list[str]) -> Reply:
    """An external MSSanté professional: their profession and structure become facts of every sharing decision
    about their address (an objection or a consent by profession or structure reaches them)."""
    contacts, address = ctx.services.contacts, words[0].lower()
    if action in ("retirer", "remove"):
        done = await contacts.remove(address, actor=ctx.sender)
        return Reply.plain(f"{address} n'est plus un correspondant connu de la structure." if done
                           else f"{address} n'est pas un correspondant connu de la structure.")
    rest = " ".join(words[1:])
    structure = ""
    if "structure:" in rest:
        rest, _, structure = rest.partition("structure:")
    profession = profession_of(rest.split())[0]
    if profession is None:
        return Reply.plain(f"Profession inconnue « {rest.strip()} » (exemples : médecin, pharmacien, infirmier, "
                           "kiné). Utilisation : !equipe ajouter <adresse MSSanté> <profession> [structure:Nom]")
    await contacts.upsert(address, name="", profession=profession, structure=structure.strip(), actor=ctx.sender)
    where = f", {structure.strip()}" if structure.strip() else ""
    return Reply.plain(f"Correspondant MSSanté {address} : {profession.label}{where}. Les consentements et oppositions "
                       "par profession ou par structure s'appliquent désormais à cette adresse.")


async def _list(roster) -> Reply:
    members = await roster.members()
    if not members:
        return Reply.plain("L'équipe est vide. La coordination ajoute des membres avec !equipe ajouter.")
    rows = []
    for cat in Category:
        for m in (m for m in members if m.profession.category is cat):
            rows.append((m.display_name, m.profession.label + (" · coordination" if m.coordinator else ""),
                         cat.value, m.user_id))
    text, html = table(["Nom", "Profession", "Catégorie", "Compte"], rows)
    return Reply(f"Équipe de la structure ({len(members)}) :\n{text}",
                 f"<p>Équipe de la structure ({len(members)}) :</p>{html}")


ALL = [equipe]
