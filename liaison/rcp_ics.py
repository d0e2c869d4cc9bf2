"""An RCP's invitation as iCalendar (RFC 5545), made with `icalendar`: one VEVENT whose UID is the meeting's, so a
calendar replaces it when the agenda changes (SEQUENCE: the agenda's version) and drops it when cancelled.

The description is what the caller decided the participant may read (bot/rcp_agenda.py): the agenda's lines, a case
shown by its pathway code only when the law does not let that participant see more.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from icalendar import Calendar, Event

DURATION = timedelta(hours=1)


def invitation(*, uid: str, code: str, starts_at_ms: int, place: str | None, title: str | None, lines: list[str],
               sequence: int, now_ms: int, organizer: str = "", cancelled: bool = False) -> str:
    """The .ics text (CRLF lines, UTF-8)."""
    cal = Calendar()
    cal.add("prodid", "-//Liaison//RCP//FR")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    start = datetime.fromtimestamp(starts_at_ms / 1000, tz=timezone.utc)
    event.add("uid", f"{uid}@liaison")
    event.add("dtstamp", datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc))
    event.add("dtstart", start)
    event.add("dtend", start + DURATION)
    event.add("sequence", sequence)
    event.add("summary", f"RCP {code}" + (f" — {title}" if title else ""))
    if place:
        event.add("location", place)
    event.add("description", "\n".join(lines) if lines else "Ordre du jour à venir.")
    if "@" in organizer and not organizer.startswith("@"):   # an address (a Matrix account is no calendar user)
        event.add("organizer", f"mailto:{organizer}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    cal.add_component(event)
    return cal.to_ical().decode()
