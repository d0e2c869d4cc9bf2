"""How an RCP reads and is typed: its moment in French, the line `!rcp planifier` takes (a moment, then a place or a
link, then a title), a case's line on the agenda. Pure, but for the dates' reading (bot/task_dates.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from bot.task_dates import PARIS, Due, names_hour, read_due
from liaison.stores.rcp import MAX_FIELD, Item, Rcp

_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_LINK = re.compile(r"https?://\S+", re.I)
_SPLIT = re.compile(r"\s+[—–|;]\s+|\s*;\s*|\s+-\s+")
EXAMPLE = "!rcp planifier jeudi 12h30 salle de réunion ; RCP diabète"


@dataclass(frozen=True)
class Meeting:
    starts_at: int
    place: str | None
    title: str | None


def when(ms: int) -> str:
    """« jeudi 10/12/2026 à 12:30 » (Paris)."""
    local = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(PARIS)
    return f"{_DAYS[local.weekday()]} {local:%d/%m/%Y} à {local:%H:%M}"


def read_moment(typed: str, now: datetime) -> tuple[Due, str] | str:
    """The longest beginning of `typed` that is a moment with its hour, and what follows it; or why not (French)."""
    words = typed.split()
    last_error = None
    for end in range(len(words), 0, -1):
        head = " ".join(words[:end])
        due = read_due(head, now, recurrence=False)
        if isinstance(due, str):
            if "passée" in due and last_error is None:
                last_error = due.replace("l'échéance", "la date")
            continue
        if due.at is None or not names_hour(head):
            return "précisez l'heure de la réunion (par exemple « jeudi 12h30 »)"
        rest = typed.strip()[len(head):] if typed.strip().startswith(head) else " ".join(words[end:])
        return due, rest.strip()
    return last_error or f"« {typed.strip()} » : je ne lis pas la date et l'heure de la réunion"


def read_meeting(typed: str, now: datetime) -> Meeting | str:
    """`!rcp planifier`'s line: the moment, then a place or a link, then a title (separated by « ; », « — » or « - »,
    or « lieu … » / « titre … »); a link is the place wherever it stands."""
    read = read_moment(typed, now)
    if isinstance(read, str):
        return read
    due, rest = read
    assert due.at is not None
    place, title = _place_and_title(rest)
    for value in (place, title):
        if value is not None and len(value) > MAX_FIELD:
            return f"le lieu et le titre font chacun au plus {MAX_FIELD} caractères"
    return Meeting(due.at, place, title)


def _place_and_title(rest: str) -> tuple[str | None, str | None]:
    rest = re.sub(r"^(?:à|a|en|lieu\s*:?)\s+", "", rest.strip(), flags=re.I) if rest else rest
    if not rest:
        return None, None
    named = re.search(r"\btitre\s*:?\s+", rest, re.I)
    if named:
        place, title = rest[:named.start()].strip(" ;,—-"), rest[named.end():].strip()
        return place or None, title or None
    link = _LINK.search(rest)
    if link:
        title = (rest[:link.start()] + rest[link.end():]).strip(" ;,—-")
        return link.group(0), title or None
    parts = _SPLIT.split(rest, maxsplit=1)
    if len(parts) == 2:
        return parts[0].strip() or None, parts[1].strip() or None
    return rest, None


def heading(rcp: Rcp) -> str:
    """« RCP R-7K3Q9 du jeudi 10/12/2026 à 12:30, salle 2 — RCP diabète »."""
    place = f", {rcp.place}" if rcp.place else ""
    title = f" — {rcp.title}" if rcp.title else ""
    return f"RCP {rcp.code} du {when(rcp.starts_at)}{place}{title}"


def item_line(item: Item, code: str, shown: bool) -> str:
    """A case on the agenda: with its question when `shown` (decided), its pathway code only otherwise."""
    if shown:
        return f"{item.number}. {code} : {item.question}"
    return f"{item.number}. {code} (code seul : la règle de partage ne vous en montre pas plus)"


def is_code(word: str) -> bool:
    return bool(re.fullmatch(r"R-[2-9A-HJKMNP-Z]{5}", word.strip().upper()))
