"""A task's due date, read as a French clinician types it, in Europe/Paris: « demain », « dans 3 jours », « lundi »,
« le 12/01 », « 12 janvier 14h », and a recurrence: « chaque jour », « chaque semaine », « chaque mois ».

`dateparser` reads the words (French only, dates from the future preferred, relative to the bot's clock); the wall
time it finds is then placed in Europe/Paris as it will be on that day, so « dans 3 jours » across the change to
summer time keeps its hour. Without an hour, a task is due at the end of its day (23:59). `dateutil.rrule` holds
the recurrence (an RRULE text stored with the task) and gives the next occurrence when a recurring task is done.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import dateparser
from dateutil.rrule import rrulestr

from bot.words import fold

PARIS = ZoneInfo("Europe/Paris")
RECURRENCES = {"jour": "FREQ=DAILY", "semaine": "FREQ=WEEKLY", "mois": "FREQ=MONTHLY"}
_RECURRENCE = re.compile(r"(?:chaque|tous les|toutes les)\s+(jours?|semaines?|mois)\b", re.I)
_HOUR = re.compile(r"\b(\d{1,2})\s*h\s*(\d{2})?\b", re.I)
_HAS_HOUR = re.compile(r"\d{1,2}\s*h\b|\d{1,2}\s*h\s*\d{2}|\d{1,2}:\d{2}|\bmidi\b|\bminuit\b|\bheures?\b|\bminutes?\b",
                       re.I)
# Moments of the day said in words, as a clinician says them: the hour a team would understand.
_MOMENTS = tuple((re.compile(rf"\b{said}\b", re.I), hour) for said, hour in (
    ("ce soir", "aujourd'hui 19:00"), ("ce matin", "aujourd'hui 9:00"), ("cet? apres-?midi", "aujourd'hui 14:00"),
    ("matin", "9:00"), ("apres-?midi", "14:00"), ("soir", "19:00")))
EXAMPLES = ("demain", "dans 3 jours", "lundi 14h", "le 12/01")


@dataclass(frozen=True)
class Due:
    at: int | None            # UTC ms; None: a recurrence from today
    recurrence: str | None    # an RRULE (FREQ=DAILY|WEEKLY|MONTHLY)


def read_due(typed: str, now: datetime, *, recurrence: bool = True) -> Due | str:
    """The due date `typed` means, from `now`; or why not, in French (the caller adds an example)."""
    words = typed.strip()
    rule = None
    found = _RECURRENCE.search(fold(words))
    if found and recurrence:
        unit = fold(found.group(1)).rstrip("s") if found.group(1) != "mois" else "mois"
        rule = RECURRENCES[unit]
        words = (fold(words)[:found.start()] + fold(words)[found.end():]).strip()
    if not words:
        if rule is None:
            return "précisez l'échéance"
        return Due(_ms(datetime.combine(now.astimezone(PARIS).date(), time(23, 59), PARIS)), rule)
    local_now = now.astimezone(PARIS)
    for moment, said in _MOMENTS:
        words = moment.sub(said, fold(words) if moment.search(fold(words)) else words)
    read = dateparser.parse(_HOUR.sub(lambda m: f"{m.group(1)}:{m.group(2) or '00'}", words), languages=["fr"],
                            settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": local_now.replace(tzinfo=None),
                                      "TIMEZONE": "Europe/Paris", "RETURN_AS_TIMEZONE_AWARE": True,
                                      "DATE_ORDER": "DMY"})
    if read is None:
        return f"« {typed.strip()} » n'est pas une échéance que je sais lire"
    wall = read.replace(tzinfo=None)   # its wall time; the offset it carries may be the base's (« dans 3 jours »)
    if not _HAS_HOUR.search(words):
        wall = datetime.combine(wall.date(), time(23, 59))
    when = wall.replace(tzinfo=PARIS)   # placed in Paris as that day is (summer or winter time)
    if when <= now:
        return f"l'échéance « {typed.strip()} » ({shown(_ms(when))}) est déjà passée"
    return Due(_ms(when), rule)


def names_hour(typed: str) -> bool:
    """Whether `typed` says an hour (« 14h », « 12:30 », « midi », « ce soir »), not only a day."""
    folded = fold(typed)
    return bool(_HAS_HOUR.search(folded) or any(moment.search(folded) for moment, _hour in _MOMENTS))


def read_recurrence(typed: str) -> str | None:
    """The RRULE of a recurrence written alone (« chaque semaine », « tous les jours »: a protocol's step), or None."""
    found = _RECURRENCE.fullmatch(fold(typed.strip()))
    if found is None:
        return None
    return RECURRENCES[fold(found.group(1)).rstrip("s") if found.group(1) != "mois" else "mois"]


def next_due(rule: str, due_at: int | None, now_ms: int) -> int:
    """The next occurrence of a recurring task after it is done: after its due date and after now."""
    start = datetime.fromtimestamp((due_at or now_ms) / 1000, tz=timezone.utc).astimezone(PARIS).replace(tzinfo=None)
    after = max(start, datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).astimezone(PARIS).replace(tzinfo=None))
    following = rrulestr(rule, dtstart=start).after(after)
    return _ms(following.replace(tzinfo=PARIS))


def valid_rule(rule: str) -> bool:
    return rule in RECURRENCES.values()


def shown(ms: int | None) -> str:
    """A due date as a French reader expects it, in Paris: « 12/01/2028 » or « 12/01/2028 14:00 »."""
    if ms is None:
        return "sans échéance"
    local = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(PARIS)
    return f"{local:%d/%m/%Y}" if (local.hour, local.minute) == (23, 59) else f"{local:%d/%m/%Y %H:%M}"


def recurrence_label(rule: str | None) -> str:
    return {v: f"chaque {k}" for k, v in RECURRENCES.items()}.get(rule or "", "")


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
