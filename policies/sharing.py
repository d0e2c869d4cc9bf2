"""The one decision point for sharing a patient's information: facts in, a decision out.

Rules are checked in order; each carries its id, its legal basis and a French sentence.
An objection always wins; inside the team of care information flows; outside it, only
with a consent in force; non-health professionals only for their role's data categories.
Facts changed behind Liaison's back (the trace does not vouch for them) move nothing at all.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from policies.decision import Allow, Decision, Deny
from policies.professions import Category


class Action(enum.Enum):
    INVITE = "inviter"
    JOIN = "rejoindre"
    RELAY_OUT = "relayer vers l'extérieur"
    RELAY_IN = "relayer vers le salon"
    SEND_DOCUMENT = "envoyer un document"
    EXPORT_TRACE = "exporter la trace"
    RECEIPT = "accuser lecture"          # a read receipt (MDN) to the sender of a mail
    SHOW = "montrer dans le salon"       # a command's answer, read by everyone in the room it is typed in
    ARCHIVE = "archiver"                 # the pathway's archive, handed to the coordination
    EXPORT_PATHWAY = "exporter le parcours"   # the pathway in FHIR, to the coordination or the operator


@dataclass(frozen=True)
class Knobs:
    """The structure's sharing policy (see policies/knobs.py for how they are declared and loaded)."""
    non_health_roles: dict[str, frozenset[str]] = field(default_factory=lambda: {
        "assistant-service-social": frozenset({"social", "administratif"}),
        "educateur-specialise": frozenset({"social"}),
        "enseignant-apa": frozenset({"soins"}),
        "psychologue": frozenset({"soins", "social"}),
    })
    non_health_needs_consent: bool = True
    notice_required: bool = True
    oral_consent_allowed: bool = True
    consent_recorders: str = "coordination"   # coordination | equipe
    consent_expiry_days: int = 0               # 0: a consent runs until withdrawn, unless a date is given
    retention_days_after_closure: int = 730    # then the closed pathway is archived and forgotten
    room_naming: frozenset[str] = frozenset({"initiales"})   # shown in room names besides the code (policies.naming)
    rooms_federate: bool = False               # the rooms Liaison makes may be joined from other homeservers
    mail_correspondents_in_team: bool = True   # an MSSanté correspondent who wrote about the patient is answered
    health_professions: frozenset[str] = frozenset({
        "medecin", "pharmacien", "chirurgien-dentiste", "sage-femme", "infirmier", "masseur-kinesitherapeute",
        "pedicure-podologue", "orthophoniste", "orthoptiste", "ergotherapeute", "dieteticien", "psychomotricien"})
    document_kinds: frozenset[str] = frozenset({"pdf", "image", "cda", "text"})   # sniffed kinds indexed
    document_max_mib: int = 25                 # a bigger file entering a pathway room is not indexed


@dataclass(frozen=True)
class Recipient:
    kind: str                      # member | external | directory | operator (OPERATOR, at the command line)
    user_or_address: str
    category: Category | None      # None: not on the roster, profession unknown
    in_roster: bool
    roles: frozenset[str] = frozenset()
    correspondent: bool = False    # an external MSSanté address that wrote to this pathway about this patient
    trusted_domain: bool = False   # external: its domain is on the MSSanté trusted list
    name: str = ""                 # how the team knows them (the roster's, or the recorded correspondent's name)

    @property
    def who(self) -> str:
        """Whom a reason names: their name when the structure knows it, else their account or address."""
        return self.name or self.user_or_address


@dataclass(frozen=True)
class Consent:
    scope_kind: str                # person | profession | structure
    scope: str
    means: str                     # oral | écrit | électronique
    recorded_by: str
    recorded_at: datetime
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None
    categories: frozenset[str] = frozenset()   # empty: every category
    notice_given: bool = True


@dataclass(frozen=True)
class Objection:
    scope_kind: str                # person | profession | category
    scope: str
    recorded_at: datetime
    lifted_at: datetime | None = None


@dataclass(frozen=True)
class Facts:
    action: Action
    actor: str
    recipient: Recipient
    team: frozenset[str]
    now: datetime
    actor_roles: frozenset[str] = frozenset()
    recipient_profession: str | None = None
    recipient_structure: str | None = None
    recipient_specialty: str | None = None   # an external address's specialty, as the directory says (« cardiologue »)
    consents: tuple[Consent, ...] = ()
    objections: tuple[Objection, ...] = ()
    data_category: str = "soins"
    knobs: Knobs = field(default_factory=Knobs)
    room_kind: str = "clinical"              # SHOW: clinical | circle | other (a room that is not the pathway's)
    circle_categories: frozenset[str] = frozenset()   # SHOW in the circle room: the categories shared there
    # What the trace does not vouch for among the facts read (« oppositions », « équipe de la structure »…), already
    # read cautiously (liaison/stores/facts.py): the decision is refused all the same, until they are verified.
    tampered: tuple[str, ...] = ()


RULES = {
    "objection.person": ("CSP L.1110-4 III", "le patient s'est opposé au partage avec cette personne"),
    "objection.profession": ("CSP L.1110-4 III", "le patient s'est opposé au partage avec cette profession"),
    "objection.category": ("CSP L.1110-4 III, R.1110-2", "le patient s'est opposé au partage hors santé"),
    "objection.unknown_profession": ("CSP L.1110-4 III", "opposition par profession ou hors santé : profession "
                                                         "du destinataire inconnue, lecture prudente"),
    "trace.export": ("CSP L.1110-4 ; RGPD art. 15", "l'export de la trace est réservé à la coordination"),
    "team.health": ("CSP L.1110-4 II, L.1110-12", "professionnel de santé de l'équipe de soins"),
    "team.coordination": ("CSP L.1110-12", "coordination de l'équipe de soins"),
    "non_health.allowed": ("CSP R.1110-2, R.1110-3", "rôle non soignant, catégories utiles à sa mission"),
    "non_health.role_not_allowed": ("CSP R.1110-2", "rôle non soignant non prévu par la politique"),
    "non_health.category_not_allowed": ("CSP R.1110-2", "catégorie d'information hors de sa mission"),
    "non_health.no_consent": ("CSP R.1110-2, L.1110-4 III", "rôle non soignant sans consentement"),
    "non_health.no_notice": ("CSP R.1110-3", "patient non informé de ce partage"),
    "outside.consent": ("CSP L.1110-4 III", "hors équipe, avec le consentement du patient"),
    "outside.no_consent": ("CSP L.1110-4 III", "hors équipe, sans consentement"),
    "mail.untrusted_domain": ("Référentiel MSSanté (liste blanche)", "adresse hors de l'espace de confiance MSSanté"),
    "mail.trusted_sender": ("CSP L.1110-4 II ; référentiel MSSanté", "message d'un professionnel de l'espace MSSanté"),
    "team.correspondent": ("CSP L.1110-12, L.1110-4 II", "correspondant MSSanté qui prend part aux soins du patient"),
    "mail.receipt": ("RFC 8098 ; CSP L.1110-4", "accusé de lecture au seul expéditeur du courriel"),
    "room.clinical": ("CSP L.1110-4 II, L.1110-12", "salon clinique : l'équipe de soins du patient"),
    "room.circle": ("CSP R.1110-2, R.1110-3", "cercle élargi : catégories d'informations partagées avec lui"),
    "room.circle_category": ("CSP R.1110-2", "information hors des catégories du cercle élargi"),
    "room.direct": ("CSP L.1110-4 II, L.1110-12", "conversation privée : ce que le demandeur lui-même peut voir"),
    "room.coordination": ("CSP L.1110-12", "salon de la coordination de l'équipe de soins"),
    "room.not_pathway": ("CSP L.1110-4", "salon qui n'est pas celui du parcours"),
    "archive.coordination": ("CSP L.1110-4 ; RGPD art. 5-1-e", "archive remise à la coordination"),
    "export.coordination": ("CSP L.1110-4, L.1110-12", "export du parcours remis à la coordination"),
    "export.operator": ("CSP L.1111-8 ; RGPD art. 28, 32", "export du parcours par l'exploitant, qui héberge les "
                                                           "données pour la structure"),
    "facts.tampered": ("CSP L.1110-4 ; RGPD art. 5-1-f, art. 32", "faits modifiés hors de Liaison"),
}
OPERATOR = "exploitant"   # the structure's operator, who runs `liaison` on the server: a recipient, not an account
RECORD_CONSENT = "enregistrez d'abord le consentement du patient (!consentement enregistrer …)"


def _allow(rule: str, reason: str) -> Allow:
    return Allow(rule, reason, RULES[rule][0])


def _deny(rule: str, reason: str) -> Deny:
    return Deny(rule, reason, RULES[rule][0])


def consent_in_force(c: Consent, now: datetime) -> bool:
    return c.withdrawn_at is None and (c.expires_at is None or c.expires_at > now)


def objection_in_force(o: Objection) -> bool:
    return o.lifted_at is None


def _names(f: Facts, kind: str, scope: str) -> bool:
    if kind == "person":
        return scope.casefold() == f.recipient.user_or_address.casefold()
    if kind == "profession":   # or a specialty within it: « !opposition cardiologue »
        return scope in (f.recipient_profession, f.recipient_specialty)
    if kind == "structure":
        return bool(f.recipient_structure) and scope.casefold() == (f.recipient_structure or "").casefold()
    if kind == "category":   # the coordination of the team of care (L.1110-12) is not a non-health professional
        return (f.recipient.category in (Category.SOCIAL, Category.OTHER) and "coordinator" not in f.recipient.roles
                and scope in ("social", "non-sante"))
    return False


def _reaches(f: Facts, o: Objection) -> bool:
    """The structure's coordination records and lifts the patient's will (L.1110-12): an objection reaches it only
    when it names that person. By profession, structure or category it would remove the one who typed it, and no
    one left could lift it."""
    coordination = f.recipient.in_roster and "coordinator" in f.recipient.roles
    return o.scope_kind == "person" or not coordination


def covering_consent(f: Facts) -> Consent | None:
    for c in f.consents:
        if (consent_in_force(c, f.now) and _names(f, c.scope_kind, c.scope)
                and (not c.categories or f.data_category in c.categories)
                and (c.means != "oral" or f.knobs.oral_consent_allowed)):
            return c
    return None


def decide(f: Facts) -> Decision:
    who = f.recipient.who
    if f.recipient.kind == "external" and not f.recipient.trusted_domain:
        return _deny("mail.untrusted_domain", f"{who} n'appartient pas à l'espace de confiance MSSanté (liste "
                                              "blanche) : rien n'est relayé depuis ou vers cette adresse.")
    if f.action is Action.SHOW:
        return _show(f)
    if f.tampered:   # read cautiously already; nothing moves on facts no one can vouch for
        return _deny("facts.tampered", f"Des faits de ce partage ont été modifiés hors de Liaison "
                                       f"({', '.join(f.tampered)}) : rien n'est transmis ni déposé tant que "
                                       "l'exploitant ne les a pas vérifiés (liaison trace verify).")
    for o in f.objections:   # an objection wins over everything, both ways, at the moment of the movement
        if objection_in_force(o) and _names(f, o.scope_kind, o.scope) and _reaches(f, o):
            return _deny(f"objection.{o.scope_kind}", f"Le patient s'est opposé au partage avec {who} "
                                                      "(opposition en vigueur) : rien ne lui est transmis, "
                                                      "rien de sa part n'est déposé.")
    if (unknown := _unknown_profession_objection(f)) is not None:
        return unknown
    if f.action is Action.RELAY_IN:   # receiving from a trusted professional shares nothing with them
        return _allow("mail.trusted_sender", f"Message de {who}, professionnel de l'espace de confiance MSSanté.")
    if f.action is Action.RECEIPT:    # says only "read", to the one who wrote
        return _allow("mail.receipt", f"Accusé de lecture à {who}, qui a écrit ce courriel.")
    if f.action is Action.ARCHIVE:   # handed to someone of the coordination, whoever runs it
        if f.recipient.in_roster and "coordinator" in f.recipient.roles:
            return _allow("archive.coordination", "Archive du parcours remise à la coordination.")
        return _deny("archive.coordination", "L'archive d'un parcours n'est remise qu'à la coordination.")
    if f.action is Action.EXPORT_PATHWAY:
        return _export(f)
    if f.action is Action.EXPORT_TRACE:
        if "coordinator" in f.actor_roles:
            return _allow("trace.export", "Export de la trace par la coordination.")
        return _deny("trace.export", "L'export de la trace est réservé à la coordination de la structure.")
    r = f.recipient
    if r.kind == "external" and r.category in (Category.SOCIAL, Category.OTHER):
        return _non_health(f)   # recorded as non-health by the coordination: a colleague's rules, mail or not
    if r.kind == "external" and r.correspondent and f.knobs.mail_correspondents_in_team:
        return _allow("team.correspondent", f"{who} a écrit à l'équipe au sujet de ce patient dans ce parcours : "
                                            "il prend part à ses soins.")
    if r.in_roster and "coordinator" in r.roles:
        return _allow("team.coordination", f"{who} coordonne l'équipe de soins de la structure.")
    if r.category is Category.HEALTH and r.user_or_address in f.team:
        return _allow("team.health", f"{who} est un professionnel de santé de l'équipe de soins du patient.")
    if r.in_roster and r.category in (Category.SOCIAL, Category.OTHER):
        return _non_health(f)
    consent = covering_consent(f)
    if consent:
        return _allow("outside.consent", f"{who} est hors de l'équipe de soins, avec le consentement "
                                         f"{consent.means} du patient.")
    return _deny("outside.no_consent", f"{who} est hors de l'équipe de soins : {RECORD_CONSENT}.")


def _export(f: Facts) -> Decision:
    """The whole pathway (team, tasks, consents, documents' index) leaves Liaison as one file: to the coordination,
    asked by it, or to the operator at the command line. What the recipient then does with it is theirs to answer for."""
    if f.recipient.kind == "operator":
        return _allow("export.operator", "Export FHIR du parcours par l'exploitant de la structure (ligne de "
                                         "commande), qui héberge ses données.")
    if "coordinator" in f.actor_roles and f.recipient.in_roster and "coordinator" in f.recipient.roles:
        return _allow("export.coordination", f"Export FHIR du parcours remis à {f.recipient.who}, de la coordination.")
    return _deny("export.coordination", "L'export FHIR d'un parcours n'est remis qu'à la coordination de la "
                                        "structure, à sa demande.")


def _unknown_profession_objection(f: Facts) -> Decision | None:
    """An external address whose profession no one recorded, while the patient objects to a profession or to the
    non-health professionals: the objection may be about it. The cautious reading, until the coordination records
    what it is (`!equipe ajouter <adresse> <profession>`)."""
    r = f.recipient
    if r.kind != "external" or f.recipient_profession is not None or r.category is not None:
        return None
    if not any(objection_in_force(o) and o.scope_kind in ("profession", "category") for o in f.objections):
        return None
    return _deny("objection.unknown_profession", f"Le patient s'est opposé au partage avec une profession ou hors "
                                                 f"santé, et la profession de {r.who} n'est pas connue : rien ne lui "
                                                 "est transmis, rien de sa part n'est déposé, tant que la coordination "
                                                 f"ne l'a pas enregistrée (!equipe ajouter {r.user_or_address} "
                                                 "<profession>).")


def _show(f: Facts) -> Decision:
    """A command's answer is read by everyone in the room: what the room may show decides. In a direct conversation
    the one who typed it reads it alone: what they may see decides; the coordination's room holds the coordination
    only (its members follow the roster)."""
    if f.room_kind == "clinical":
        return _allow("room.clinical", "Réponse dans le salon clinique du parcours (équipe de soins).")
    if f.room_kind == "direct":
        reader = decide(replace(f, action=Action.JOIN, room_kind="clinical"))
        if not reader.allowed:
            return reader
        return _allow("room.direct", f"Réponse en conversation privée avec Liaison : {reader.reason}")
    if f.room_kind == "coordination":
        if "coordinator" in f.actor_roles:
            return _allow("room.coordination", "Réponse dans le salon de la coordination, que seule la coordination "
                                               "de l'équipe de soins lit.")
        return _deny("room.coordination", "Le salon de la coordination ne montre ces informations qu'à la demande de "
                                          "la coordination.")
    if f.room_kind == "circle":
        if f.data_category != "soins" and f.data_category in f.circle_categories:
            return _allow("room.circle", f"Informations « {f.data_category} », partagées avec le cercle élargi.")
        return _deny("room.circle_category", f"Ce salon est le cercle élargi du parcours : les informations "
                                             f"« {f.data_category} » n'y sont pas montrées (elles restent dans le "
                                             "salon clinique).")
    return _deny("room.not_pathway", "Tapez cette commande dans le salon du parcours concerné.")


def _non_health(f: Facts) -> Decision:
    who = f.recipient.who
    allowed = f.knobs.non_health_roles.get(f.recipient_profession or "")
    if allowed is None:
        return _deny("non_health.role_not_allowed", f"Le rôle de {who} n'est pas prévu par la politique de partage "
                                                    "de la structure (professionnel non soignant).")
    if f.data_category not in allowed:
        return _deny("non_health.category_not_allowed", f"Les informations « {f.data_category} » ne relèvent pas "
                                                        f"de la mission de {who}.")
    consent = covering_consent(f)
    if f.knobs.non_health_needs_consent and consent is None:
        return _deny("non_health.no_consent", f"{who} n'est pas un professionnel de santé : {RECORD_CONSENT}.")
    if f.knobs.notice_required and consent is not None and not consent.notice_given:
        return _deny("non_health.no_notice", "Le patient doit d'abord être informé de la catégorie d'informations "
                                             f"partagée avec {who} (R.1110-3).")
    return _allow("non_health.allowed", f"{who} participe au parcours pour les informations utiles à sa mission.")
