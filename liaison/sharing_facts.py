"""Gather the facts of one sharing question from the database, for `policies.sharing.decide`.

Shared by the bot and the bridge through one narrow port, `SharingStores`: what a decision reads, and the trace
it is written to (the bot's `Services.sharing`, the bridge's `Deps.sharing`).

Every fact is read checked against the trace that vouches for it (liaison/stores/facts.py): one changed in the
database behind Liaison's back reads cautiously (an objection in force, no consent, no member, no correspondent,
not in the usual team), is logged as an alert, and named in `Facts.tampered`, which refuses the decision
(facts.tampered).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from liaison.clock import Clock, SystemClock
from liaison.stores.consents import ConsentStore
from liaison.stores.contacts import Contacts
from liaison.stores.facts import Altered
from liaison.stores.mail import MailStore
from liaison.stores.pathways import Pathway, PathwayStore
from liaison.stores.roster import Roster
from liaison.stores.trace import Trace
from liaison.trusted import TrustedDomains
from policies.professions import Category
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
    and structure are what the coordination recorded for it (`!equipe ajouter <adresse> …`)."""
    operator = user_id == OPERATOR   # at the command line: no account, no address, nothing to look up
    external = not operator and not user_id.startswith("@")
    members, altered = await stores.roster.checked({actor} if external or operator else {actor, user_id})
    member, actor_member = None if external else members.get(user_id), members.get(actor)
    profession, structure = (member.profession, member.structure) if member else (None, None)
    name = member.display_name if member else ""
    if external:
        contact, found = await stores.contacts.checked(user_id) if stores.contacts else (None, [])
        altered += found
        if contact:
            profession, structure, name = contact.profession, contact.structure, contact.name or ""
        if trusted_domain is None:
            trusted_domain = bool(stores.trusted and stores.trusted.trusts(user_id))
        if correspondent is None and stores.mail and pathway:
            correspondent, found = await stores.mail.checked_correspondent(pathway.id, user_id)
            altered += found
    if pathway:
        will = await stores.consents.will(pathway.patient_id)
        consents, objections = will.consents, will.objections
        usual, found = await stores.pathways.checked_usual_team(pathway.patient_id)
        altered += [*will.altered, *found]
    else:   # what concerns no one pathway (the quarantine's list): no patient's will nor team
        consents, objections, usual = (), (), []
    team = set(usual)
    team |= {u for u, state, rule in (await stores.pathways.members(pathway.id) if pathway else [])
             if state in ACTIVE and "team." in rule}   # in by a team-of-care rule
    if joining_team:   # brought into the patient's team of care by its inviter: decided as such, kept only if allowed
        team.add(user_id)
    recipient = Recipient(
        kind="operator" if operator else "external" if external else "member", user_or_address=user_id,
        category=category_of(stores.knobs, profession) if profession else None, in_roster=member is not None,
        roles=member.roles if member else frozenset(), correspondent=bool(correspondent),
        trusted_domain=bool(trusted_domain), name=name)
    return Facts(action=action, actor=actor, actor_roles=actor_member.roles if actor_member else frozenset(),
                 recipient=recipient, recipient_profession=profession.key if profession else None,
                 recipient_structure=structure, team=frozenset(team),
                 consents=consents, objections=objections, data_category=data_category,
                 now=stores.clock.now(), knobs=stores.knobs, room_kind=room_kind,
                 circle_categories=circle_categories, tampered=_labels(altered))


def _labels(altered: list[Altered]) -> tuple[str, ...]:
    """What was changed behind Liaison's back, in French, once each, in a stable order."""
    return tuple(sorted({a.label for a in altered}))


async def decide_for(stores: SharingStores, **kw):
    return decide(await facts_for(stores, **kw))
