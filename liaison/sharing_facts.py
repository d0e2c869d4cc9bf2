"""Gather the facts of one sharing question from the database, for `policies.sharing.decide`.

Shared by the bot and the bridge through one narrow port, `SharingStores`: what a decision reads, and the trace
it is written to (the bot's `Services.sharing`, the bridge's `Deps.sharing`).

Every fact is read checked against the trace that vouches for it (liaison/stores/facts.py): one changed in the
database behind Liaison's back reads cautiously (an objection in force, no consent, no member, no correspondent,
not in the usual team), is logged as an alert, and named in `Facts.tampered`, which refuses the decision
(facts.tampered).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from liaison.clock import Clock, SystemClock
from liaison.stores.consents import ConsentStore, Will
from liaison.stores.contacts import Contacts
from liaison.stores.directory import Directory, Entry
from liaison.stores.facts import Altered
from liaison.stores.mail import MailStore
from liaison.stores.pathways import Pathway, PathwayStore
from liaison.stores.roster import Roster, RosterMember
from liaison.stores.trace import Trace
from liaison.trusted import TrustedDomains
from policies.professions import Category, Profession, find_specialty
from policies.sharing import OPERATOR, Action, Facts, Knobs, Recipient, decide

ACTIVE = ("invited", "joined")


@dataclass(frozen=True)
class SharingStores:
    """Everything a sharing decision reads (and the trace it is written to); None: the structure has no such
    thing (no MSSanté bridge: no trusted list, no correspondents)."""
    roster: Roster
    consents: ConsentStore
    pathways: PathwayStore
    knobs: Knobs
    trace: Trace
    contacts: Contacts | None = None
    trusted: TrustedDomains | None = None
    mail: MailStore | None = None
    clock: Clock = field(default_factory=SystemClock)   # « now » for consents that expire
    directory: Directory | None = None   # the national directory: an external address's profession and structure


def category_of(knobs, profession) -> Category:
    """The policy says which professions count as health professions; the catalogue says the rest."""
    if profession.key in knobs.health_professions:
        return Category.HEALTH
    return Category.OTHER if profession.category is Category.HEALTH else profession.category


async def facts_for(stores: SharingStores, *, pathway: Pathway | None, user_id: str, actor: str, action: Action,
                    data_category: str = "soins", correspondent: bool | None = None,
                    trusted_domain: bool | None = None, room_kind: str = "clinical",
                    circle_categories: frozenset[str] = frozenset(), joining_team: bool = False) -> Facts:
    """For an external address: `correspondent`, it wrote to this pathway about this patient (looked up when not
    given); `trusted_domain`, its domain is on the MSSanté trusted list (looked up when not given); its profession
    and structure are what the coordination recorded for it (`!equipe ajouter <adresse> …`), else what the national
    directory says of its mailbox (with its specialty: « !opposition cardiologue »)."""
    operator = user_id == OPERATOR   # at the command line: no account, no address, nothing to look up
    external = not operator and not user_id.startswith("@")
    members, altered = await stores.roster.checked({actor} if external or operator else {actor, user_id})
    member, actor_member = None if external else members.get(user_id), members.get(actor)
    profession, structure = (member.profession, member.structure) if member else (None, None)
    name = member.display_name if member else ""
    specialty: str | None = None
    if external:
        contact, found = await stores.contacts.checked(user_id) if stores.contacts else (None, [])
        altered += found
        if contact:
            profession, structure, name = contact.profession, contact.structure, contact.name or ""
        elif stores.directory and (entry := await stores.directory.by_address(user_id)):
            profession, structure, specialty, name = entry.profession, entry.structure, specialty_of(entry), entry.name
        if trusted_domain is None:
            trusted_domain = bool(stores.trusted and stores.trusted.trusts(user_id))
        if correspondent is None and stores.mail and pathway:
            correspondent, found = await stores.mail.checked_correspondent(pathway.id, user_id)
            altered += found
    if pathway:
        will = await stores.consents.will(pathway.patient_id)
        usual, found = await stores.pathways.checked_usual_team(pathway.patient_id)
        patient = _Patient(will, usual, found, await stores.pathways.members(pathway.id))
    else:
        patient = _NO_PATIENT
    return _facts(stores, patient, Question(pathway, user_id, data_category, room_kind, circle_categories),
                  action=action, actor=actor, actor_member=actor_member, member=member, external=external,
                  profession=profession, structure=structure, name=name, correspondent=bool(correspondent),
                  trusted_domain=bool(trusted_domain), altered=altered, joining_team=joining_team,
                  specialty=specialty)


def specialty_of(entry: Entry) -> str | None:
    """The key of the entry's specialty (its savoir-faire) when it is one of ours, within its profession."""
    found = find_specialty(entry.specialty or "")
    return found.key if found and entry.profession and found.within == entry.profession.key else None


@dataclass(frozen=True)
class Question:
    """One question of a batch (`facts_for_many`): `pathway`'s `data_category` information to `user_id`, in a room
    of `room_kind` (a command's answer: `circle_categories`, what the circle room shares)."""
    pathway: Pathway | None
    user_id: str
    data_category: str = "soins"
    room_kind: str = "clinical"
    circle_categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Patient:
    """What a decision reads of the patient and the pathway: their will, their usual team (and what of it the trace
    does not vouch for), the pathway's members."""
    will: Will
    usual: list[str]
    usual_altered: list[Altered]
    members: list[tuple[str, str, str]]


_NO_PATIENT = _Patient(Will((), ()), [], [], [])   # what concerns no one pathway: no patient's will nor team


async def facts_for_many(stores: SharingStores, questions: Sequence[Question], *, actor: str,
                         action: Action) -> list[Facts]:
    """The facts of several questions asked by one `actor` of members of the roster (never an external address),
    read at once: the roster rows once, each patient's consents, objections and usual team in one query per table,
    the pathways' members in one. Each question's facts are those `facts_for` reads, checked against the trace the
    same way: a batch decides what the same questions asked one by one decide."""
    if any(not q.user_id.startswith("@") for q in questions):
        raise ValueError("a batch of decisions is for members of the roster, not external addresses")
    members, altered = await stores.roster.checked({actor} | {q.user_id for q in questions})
    pathways = {q.pathway.id: q.pathway for q in questions if q.pathway}
    patient_ids = {p.patient_id for p in pathways.values()}
    wills = await stores.consents.wills(patient_ids)
    teams = await stores.pathways.checked_usual_teams(patient_ids)
    in_rooms = await stores.pathways.members_of(pathways)
    found = []
    for q in questions:
        patient = (_Patient(wills[q.pathway.patient_id], *teams[q.pathway.patient_id], in_rooms[q.pathway.id])
                   if q.pathway else _NO_PATIENT)
        member = members.get(q.user_id)
        found.append(_facts(stores, patient, q, action=action, actor=actor, actor_member=members.get(actor),
                            member=member, external=False,
                            profession=member.profession if member else None,
                            structure=member.structure if member else None,
                            name=member.display_name if member else "", correspondent=False,
                            trusted_domain=False, altered=[a for a in altered if a.id in (actor, q.user_id)]))
    return found


def _facts(stores: SharingStores, patient: _Patient, q: Question, *, action: Action, actor: str,
           actor_member: RosterMember | None, member: RosterMember | None, external: bool,
           profession: Profession | None, structure: str | None, name: str, correspondent: bool,
           trusted_domain: bool, altered: list[Altered], joining_team: bool = False,
           specialty: str | None = None) -> Facts:
    """The policy core's facts, from what was read (one question's or a batch's)."""
    will = patient.will
    altered = [*altered, *will.altered, *patient.usual_altered]
    team = set(patient.usual)
    team |= {u for u, state, rule in patient.members
             if state in ACTIVE and "team." in rule}   # in by a team-of-care rule
    if joining_team:   # brought into the patient's team of care by its inviter: decided as such, kept only if allowed
        team.add(q.user_id)
    recipient = Recipient(
        kind="operator" if q.user_id == OPERATOR else "external" if external else "member", user_or_address=q.user_id,
        category=category_of(stores.knobs, profession) if profession else None, in_roster=member is not None,
        roles=member.roles if member else frozenset(), correspondent=correspondent,
        trusted_domain=trusted_domain, name=name)
    return Facts(action=action, actor=actor, actor_roles=actor_member.roles if actor_member else frozenset(),
                 recipient=recipient, recipient_profession=profession.key if profession else None,
                 recipient_structure=structure, recipient_specialty=specialty, team=frozenset(team),
                 consents=will.consents, objections=will.objections, data_category=q.data_category,
                 now=stores.clock.now(), knobs=stores.knobs, room_kind=q.room_kind,
                 circle_categories=q.circle_categories, tampered=_labels(altered))


def _labels(altered: list[Altered]) -> tuple[str, ...]:
    """What was changed behind Liaison's back, in French, once each, in a stable order."""
    return tuple(sorted({a.label for a in altered}))


async def decide_for(stores: SharingStores, **kw):
    return decide(await facts_for(stores, **kw))
