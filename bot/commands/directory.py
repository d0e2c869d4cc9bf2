"""`!annuaire`: the national directory (Annuaire Santé), searched by name, RPPS, profession with a commune or a
department, or savoir-faire; five matches a page, `!annuaire suite` for the next.

Public data on professionals, no patient's (declared so: it answers in any room); what a team searched is not
public: the terms are kept in memory for `!annuaire suite` only, and the log carries counts only.
"""
from __future__ import annotations

from html import escape
from typing import Protocol

import structlog

from bot.directory_lookup import DirectoryPort, describe
from bot.registry import Arg, Audience, Context, Reply, group
from bot.searches import LastSearches
from liaison.stores.directory import COUNTED

log = structlog.get_logger(__name__)
PAGE = 5
NO_DIRECTORY = "L'annuaire santé n'est pas disponible pour cette structure."
NEVER_IMPORTED = ("L'annuaire santé n'a encore jamais été importé pour cette structure : l'administrateur l'importe "
                  "avec « liaison annuaire importer » (README, « L'annuaire santé »).")
EXAMPLES = ("un nom (!annuaire Lefebvre), un n° RPPS (11 chiffres), une profession et une commune ou un département "
            "(!annuaire kiné Lille, !annuaire infirmier 59) ou un savoir-faire (!annuaire cardiologie)")


class AnnuairePorts(Protocol):
    """What `!annuaire` reads: the directory, and each person's last search in a room."""
    @property
    def directory(self) -> DirectoryPort | None: ...
    @property
    def searches(self) -> LastSearches: ...


def _available(services: AnnuairePorts) -> str | None:
    return NO_DIRECTORY if services.directory is None else None


annuaire = group("annuaire", en="directory", who=Audience.STAFF, default="chercher", requires=_available,
                 help="L'annuaire santé : chercher un professionnel, son adresse MSSanté (!annuaire kiné Lille).")


@annuaire.sub("chercher", en="search", aliases=["rechercher"],
              args=[Arg("recherche", "un nom, un n° RPPS, une profession et une commune ou un département, ou un "
                                     "savoir-faire", rest=True)],
              help="Les professionnels qui répondent le mieux : profession, structure, commune, adresse MSSanté.")
async def _search(ctx: Context[AnnuairePorts]) -> Reply:
    return await _page(ctx, ctx.args["recherche"], 0)


@annuaire.sub("suite", en="next", aliases=["plus"], help="Les résultats suivants de votre dernière recherche ici.")
async def _next(ctx: Context[AnnuairePorts]) -> Reply:
    last = ctx.services.searches.last(ctx.room_id, ctx.sender)
    if last is None:
        return Reply.plain("Aucune recherche récente de votre part dans ce salon. Cherchez d'abord : "
                           "!annuaire <nom | RPPS | profession commune> (ex. !annuaire kiné Lille).")
    return await _page(ctx, *last)


async def _page(ctx: Context[AnnuairePorts], query: str, offset: int) -> Reply:
    directory = ctx.services.directory
    if directory is None:
        return Reply.plain(NO_DIRECTORY)
    entries, total = await directory.search(query, limit=PAGE, offset=offset)
    log.info("directory.searched", shown=len(entries), total=total, offset=offset)   # never the terms
    if total == 0 and not any(i.state == "done" for i in await directory.imports(50)):
        return Reply.plain(NEVER_IMPORTED)
    if total == 0:
        return Reply.plain(f"Aucun professionnel trouvé dans l'annuaire santé. Essayez {EXAMPLES}.")
    if not entries:
        return Reply.plain(f"Fin des résultats : les {min(total, COUNTED)} ont été montrés. Nouvelle recherche : !annuaire <…>.")
    shown = offset + len(entries)
    ctx.services.searches.keep(ctx.room_id, ctx.sender, query, shown)
    many = total > COUNTED   # counted up to COUNTED: past it, « more than », and a hint to narrow the search
    counted = f"plus de {COUNTED:,} résultats".replace(",", "\u202f") if many else f"{total} résultat(s)"
    head = f"Annuaire santé : {counted}, {offset + 1} à {shown}" + (" (précisez : une commune, un département) :"
                                                                     if many else " :")
    tail = "Suite : !annuaire suite." if shown < total else "Fin des résultats."
    lines = [f"{offset + i}. {describe(e)}" for i, e in enumerate(entries, 1)]
    html = (f"<p>{escape(head)}</p><ol start=\"{offset + 1}\">"
            + "".join(f"<li>{escape(describe(e))}</li>" for e in entries) + f"</ol><p>{escape(tail)}</p>")
    return Reply("\n".join([head, *lines, tail]), html)


ALL = [annuaire]
