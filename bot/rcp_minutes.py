"""`!rcp clore`: the minutes of each case, each decided at the moment it goes out and traced.

- In each patient's clinical room, that case's minutes (`rcp.minutes`): date, participants by profession, the
  question, the decisions and the tasks that follow them up. Nowhere else does a case's minutes go in full.
- To the coordination's room, the pseudonymous minutes of the whole meeting as a file: pathway codes, professions,
  questions and decisions, no patient's name nor a participant's (`rcp.minutes`, the coordination's room, per case).
- To each external participant, by mail, the minutes of the cases the law lets them read (`rcp.mail`; the bridge
  and the outbox decide again).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from bot.members import person
from bot.rcp_agenda import AgendaPorts, meetings
from bot.rcp_text import heading, when
from bot.task_text import due_text, plural, singular
from liaison.enforcement import decide_at
from liaison.matrix import txn_id
from liaison.matrix.content import notice
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.stores.pathways import Pathway
from liaison.stores.rcp import Item, Participant, Rcp, RcpMail
from liaison.stores.tasks import STATES, Task

log = structlog.get_logger(__name__)


class MinutesPorts(AgendaPorts, Protocol):
    """What publishing the minutes reads: what the agenda reads (the meetings, their tasks, the rooms)."""


@dataclass(frozen=True)
class Closed:
    rooms: int          # minutes posted in patients' rooms
    refused: int        # cases whose minutes the law kept from their room
    mails: int          # minutes handed to the bridge for external participants
    file_event: str | None


async def publish(s: MinutesPorts, rcp: Rcp) -> Closed:
    store = meetings(s)
    items = await store.items(rcp.id)
    pathways = await s.pathways.pathways({i.pathway_id for i in items})
    participants = await store.participants(rcp.id)
    present = [p for p in participants if p.present_at is not None] or participants
    who = await _professions(s, present)
    decisions: dict[str, list[Task]] = {}
    for d in await store.decisions(rcp.id):
        task = await s.tasks.by_id(d.task_id)
        if task is not None:
            decisions.setdefault(d.item_id, []).append(task)
    rooms = refused = mails = 0
    lines = [f"Compte rendu pseudonyme — {heading(rcp)}", f"Participants : {who}", ""]
    for item in items:
        pathway = pathways[item.pathway_id]
        body = await _case(s, item, decisions.get(item.id, []), named=True)
        if pathway.status == "open" and pathway.room_id and item.minutes_event is None:
            decided = await decide_at(s.sharing, "rcp.minutes", pathway=pathway, recipient=s.matrix.user_id,
                                      actor=rcp.created_by, room_kind="clinical")
            if decided.allowed:
                text = (f"Compte rendu — {heading(rcp)} (trace {decided.trace})\nParticipants : {who}\n{body}")
                event_id = await s.matrix.send(pathway.room_id, notice(text), txn_id(rcp.id, "minutes", item.id))
                await store.minutes_posted(item, event_id)
                rooms += 1
            else:
                refused += 1
        coordination = await decide_at(s.sharing, "rcp.minutes", pathway=pathway, recipient=rcp.created_by,
                                       actor=rcp.created_by, room_kind="coordination")
        lines.append(f"Cas n° {item.number} — parcours {pathway.code}")
        lines += [await _case(s, item, decisions.get(item.id, []), named=False), ""] if coordination.allowed else ["(non montré : la règle de partage ne le permet pas)", ""]
        mails += await _mail(s, rcp, item, pathway, [p for p in participants if p.external], body)
    file_event = await _file(s, rcp, "\n".join(lines))
    await store.sent(rcp.id, "minutes", "*")   # all out: a crash before this, and the next pass finishes it
    log.info("rcp.minutes_published", rcp_id=rcp.id, cases=len(items), rooms=rooms, refused=refused, mails=mails)
    return Closed(rooms, refused, mails, file_event)


async def _case(s: MinutesPorts, item: Item, tasks: list[Task], *, named: bool) -> str:
    """A case's minutes: each task's owner by name (`named`: the patient's room) or by profession only."""
    lines = [f"Question : {item.question}", "Décisions :" if tasks else "Aucune décision enregistrée."]
    for t in tasks:
        if t.owner and named:
            whom = f"pour {(await person(s, t.owner)).text()}"
        elif t.owner:
            member = await s.roster.get(t.owner)
            whom = f"pour un(e) {singular(member.profession.key) if member else 'participant'}"
        else:
            whom = f"demandée aux {plural(t.profession or '')}"
        lines.append(f"- {t.text}\n  → tâche n° {t.number}, {whom}, {due_text(t)} ({STATES[t.state]})")
    return "\n".join(lines)


async def _professions(s: MinutesPorts, participants: list[Participant]) -> str:
    """Who took part, by profession only (« 2 infirmiers, 1 médecin généraliste, 1 correspondant extérieur »)."""
    counted: dict[str, int] = {}
    for p in participants:
        member = None if p.external else await s.roster.get(p.address)
        label = member.profession.key if member else ("correspondant-exterieur" if p.external else "autre")
        counted[label] = counted.get(label, 0) + 1
    if not counted:
        return "non renseignés"
    words = {"correspondant-exterieur": ("correspondant extérieur", "correspondants extérieurs"),
             "autre": ("autre participant", "autres participants")}
    out = []
    for key, n in sorted(counted.items()):
        one, many = words.get(key, (None, None))
        if one is None:
            one, many = singular(key), plural(key)
        out.append(f"{n} {one if n == 1 else many}")
    return ", ".join(out)


async def _mail(s: MinutesPorts, rcp: Rcp, item: Item, pathway: Pathway, external: list[Participant],
                body: str) -> int:
    handed = 0
    for p in external:
        decided = await decide_at(s.sharing, "rcp.mail", pathway=pathway, recipient=p.address, actor=rcp.created_by)
        if not decided.allowed:
            continue
        text = (f"Compte rendu de la réunion de concertation pluriprofessionnelle {rcp.code} du {when(rcp.starts_at)}."
                f"\nParcours {pathway.code}, cas n° {item.number}.\n{body}")
        if await meetings(s).add_mail(RcpMail(txn_id(rcp.id, "minutes", p.address, item.id), rcp.id, "minutes",
                                              p.address, pathway.id, pathway.room_id, item.minutes_event,
                                              rcp.created_by, f"Parcours {pathway.code} : compte rendu de la RCP "
                                                              f"{rcp.code}", text, None)):
            handed += 1
    return handed


async def _file(s: MinutesPorts, rcp: Rcp, text: str) -> str | None:
    room = await s.mail.setting(QUARANTINE_ROOM) if s.mail is not None else None
    store = meetings(s)
    if room is None or await store.was_sent(rcp.id, "minutes", room):
        return None
    event_id = await s.matrix.send_file(room, text.encode(), f"compte-rendu-{rcp.code}.txt", "text/plain",
                                        txn_id(rcp.id, "minutes-file"))
    await store.sent(rcp.id, "minutes", room)
    return event_id
