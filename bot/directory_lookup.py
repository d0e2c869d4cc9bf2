"""A professional named by the directory where a command expects an MSSanté address (or, for `!parcours inviter`, an
account of the team): an RPPS (11 digits) or a name, resolved here once for every command that takes one.

The parsers (`address_or_named`, `account_or_named`) read a word and leave a `Named` for the handler, which asks the
directory (a parser cannot wait on the database). A name resolves only to people whose name has every typed word,
accents and case aside: the search forgives a typo, a resolution never does (a near name is for `!annuaire`, never
for sending a patient's data). One person: used, and the answer says whom it resolved to; several: listed, to be
chosen by RPPS; none, or no MSSanté address: refused in French, nothing done. What was typed is never logged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from bot.ports import DirectoryPort
from bot.registry import MAIL_ADDRESS, ArgError, Context, Reply, fold
from liaison.stores.directory import Entry

RPPS = re.compile(r"^\d{11}$")
LISTED = 5      # the people a « which one? » answer lists
SEARCHED = 50   # the matches a name is looked for among
TITLES = {"dr", "docteur", "pr", "professeur", "mme", "madame", "m", "monsieur", "mlle"}
NOT_ADDRESS = "« {typed} » n'est pas une adresse MSSanté (ex. dr.x@chu.mssante.fr)."
NOT_ACCOUNT = "« {typed} » n'est pas un compte Matrix : écrivez-le @nom:serveur."


class DirectoryPorts(Protocol):
    """What naming someone by the directory reads: the directory (None: not installed)."""
    @property
    def directory(self) -> DirectoryPort | None: ...


@dataclass(frozen=True)
class Named:
    """A word typed where an address or an account is expected, to be looked up in the directory."""
    typed: str


def address_or_named(word: str) -> str | Named:
    """An MSSanté address (lower-cased), or an RPPS or a name to look up; a word with an @ must be an address."""
    if MAIL_ADDRESS.match(word):
        return word.lower()
    if "@" in word:
        raise ArgError(NOT_ADDRESS.format(typed=word))
    return Named(word)


def account_or_named(word: str) -> str | Named:
    """A Matrix account, or an RPPS or a name to look up."""
    if word.startswith("@"):
        if ":" in word and " " not in word:
            return word
        raise ArgError(NOT_ACCOUNT.format(typed=word))
    return Named(word)


def describe(e: Entry) -> str:
    """One professional on one line: name · profession (specialty) · structure · commune (dept.) · RPPS · address."""
    what = e.profession_label or (e.profession.label if e.profession else "")
    if e.specialty:
        what = f"{what} ({e.specialty})" if what else e.specialty
    place = " ".join(p for p in (e.commune or "", f"({e.department})" if e.department else "") if p)
    return " · ".join(p for p in (e.name, what, e.structure or "", place, f"RPPS {e.rpps}" if e.rpps else "",
                                  e.mailbox or "pas d'adresse MSSanté") if p)


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[\s\-'’.]+", fold(text)) if w}


def _named(e: Entry, wanted: set[str]) -> bool:
    """Every typed word is a word of the person's name, or of their commune or department (« Martin Roubaix »), and
    one at least of their name."""
    name = _words(f"{e.first_name or ''} {e.last_name}")
    return bool(wanted & name) and wanted <= name | _words(e.commune or "") | {e.department or ""}


async def people(directory: DirectoryPort, typed: str) -> tuple[list[Entry], bool]:
    """The people `typed` names, one entry each (an activity with an MSSanté address first): by RPPS, or those whose
    name has every typed word; and whether there may be more (the search's first matches only were read)."""
    typed, capped = typed.strip(), False
    if RPPS.match(typed):
        found = await directory.by_id(typed)
    else:
        wanted = _words(typed) - TITLES
        matches, total = await directory.search(typed, limit=SEARCHED) if wanted else ([], 0)
        found, capped = [e for e in matches if _named(e, wanted)], total > len(matches)
    by_person: dict[str, Entry] = {}
    for e in found:
        key = e.national_id or e.mailbox or e.name
        if key not in by_person or (e.mailbox and not by_person[key].mailbox):
            by_person[key] = e
    return list(by_person.values()), capped


def _refused(ctx: Context[Any], base: str, why: str = "") -> Reply:
    name = " ".join(w for w in ctx.usage.split() if w[0] not in "<[") or ctx.usage
    return Reply.plain(" ".join(p for p in (f"{name} : {base}", why, f"Utilisation : {ctx.usage}") if p))


async def one(ctx: Context[DirectoryPorts], named: Named, *, base: str, again: str) -> Entry | Reply:
    """The one person `named` names; or the answer: the people to choose from (`again`, « !mss ecrire {rpps} … »,
    says how), or why none (`base`: what the word is not, as the parser said it before the directory)."""
    directory, typed = ctx.services.directory, named.typed
    if directory is None:
        return _refused(ctx, base)
    found, capped = await people(directory, typed)
    if not found:
        why = (f"Aucun professionnel de RPPS {typed} dans l'annuaire santé." if RPPS.match(typed.strip()) else
               f"Personne de ce nom dans l'annuaire santé (cherchez avec !annuaire {typed}).")
        return _refused(ctx, base, why)
    if len(found) == 1:
        return found[0]
    listed = "\n".join(f"{i}. {describe(e)}" for i, e in enumerate(found[:LISTED], 1))
    count = f"au moins {len(found)}" if capped else str(len(found))
    more = (f"\n… et d'autres : précisez le prénom ou la commune (entre guillemets : \"Paul Martin Roubaix\")."
            if capped or len(found) > LISTED else "")
    example = next((e.rpps for e in found if e.rpps), "<RPPS>")
    return Reply.plain(f"« {typed} » : {count} professionnels de ce nom dans l'annuaire santé :\n{listed}{more}\n"
                       f"Choisissez par le n° RPPS, par exemple : {again.format(rpps=example)}")


@dataclass(frozen=True)
class Address:
    """An MSSanté address, and whom the directory resolved it from (« » for an address typed)."""
    address: str
    said: str = ""


async def mailbox(ctx: Context[DirectoryPorts], value: str | Named, *, again: str,
                  base: str | None = None) -> Address | Reply:
    """The MSSanté address typed, or that of the one person an RPPS or a name names in the directory (`base`: what
    the word is not, when no one is found; by default, not an address)."""
    if not isinstance(value, Named):
        return Address(value)
    found = await one(ctx, value, base=base or NOT_ADDRESS.format(typed=value.typed), again=again)
    if isinstance(found, Reply):
        return found
    if not found.mailbox:
        return Reply.plain(f"{describe(found)} : l'annuaire santé ne lui connaît pas d'adresse MSSanté. "
                           "Rien n'a été fait.")
    return Address(found.mailbox, f"« {value.typed} » : {describe(found)} (annuaire santé).\n")
