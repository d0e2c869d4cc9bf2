"""A pathway in FHIR R4 (R4B models of `fhir.resources`): one `collection` Bundle a regional e-parcours tool or a
hospital can read without re-typing.

Two halves. `gather` reads the facts from the stores (`ExportPorts`); `bundle` is pure: facts and a moment in, the
Bundle as a JSON-ready dict out. Every resource is built with its model class, so the library validates it (types,
cardinalities, formats) before it is dumped.

What goes in, and the honest limits:
- Patient: the INS as identifier (`urn:oid:<the INS OID stored with it>`), birth name, first names, birth date, sex.
- EpisodeOfCare (the pathway), CareTeam (its members), CarePlan (one per pathway, the PPCS: its activities are the
  Tasks; its goals are Goal resources, lifecycleStatus active / completed / cancelled and achievementStatus
  in-progress / achieved / not-achieved; its `author` is the plan's referent, its `contributor` whoever wrote a
  version; the patient's own words « ce qui compte pour moi » a note the Patient wrote). A Task serving a goal names
  it in `reasonReference`.
- The CareTeam is shaped like the ANS « cercle de soins » profile (CDSCareTeam: one identifier, status, subject,
  period.start, each participant a PractitionerRole with its period.start), without claiming it in `meta.profile`:
  the Patient and PractitionerRole are not the FrCore / RASS profiles it requires. Professions are coded in the ANS
  nomenclature TRE_G15-ProfessionSante; the national identifier of a professional (IDNPS) is `urn:oid:1.2.250.1.71.4.2.1`
  with « 8 » + RPPS or « 0 » + ADELI, as the FrCore Practitioner slice `idNatPs` says.
- Consents and objections: one Consent each (policyRule OPTIN / OPTOUT, provision permit / deny, its actor: a
  person, a profession or a structure, named in `display` when it is not a resource of the bundle).
- Documents: one DocumentReference per indexed document, never its content nor its file: its title (as
  `description`), its type, its date, its size and MIME type, and its SHA-256 as an identifier whose value is an
  RFC 6920 URI (`ni:///sha-256;…`; `Attachment.hash` is SHA-1 in R4, which the index does not hold).
"""
from __future__ import annotations

import base64
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.goal import Goal as FhirGoal
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.task import Task as FhirTask

from liaison.stores.care_plan import Goal, Plan, Version
from liaison.stores.consents import Will
from liaison.stores.documents import Document
from liaison.stores.pathways import Patient, Pathway
from liaison.stores.roster import RosterMember
from liaison.stores.rcp import Decision as RcpDecision, Rcp
from liaison.stores.tasks import Task, TaskEvent
from policies.documents import doctype_label
from policies.professions import ProfessionalIdError, check_professional_id, find_profession, find_specialty
from policies.sharing import Consent, Objection, consent_in_force, objection_in_force

PROFESSION_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"        # identifiant national des professionnels (FrCore idNatPs)
IDNPS_PREFIX = {"RPPS": "8", "ADELI": "0"}
LOINC = "http://loinc.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
URI_SYSTEM = "urn:ietf:rfc:3986"                   # the identifier's value is a URI
RCP_DECISION_SYSTEM = "urn:liaison:rcp-decision"    # « R-7K3Q9/2 »: the meeting's code, the decision's number
TASK_STATUS = {"a_faire": "requested", "prise_en_charge": "in-progress", "faite": "completed", "annulee": "cancelled"}
TASK_STATE_LABEL = {"a_faire": "à faire", "prise_en_charge": "prise en charge", "faite": "faite", "annulee": "annulée"}
GOAL_ACHIEVEMENT = "http://terminology.hl7.org/CodeSystem/goal-achievement"
GOAL_LIFECYCLE = {"en_cours": "active", "atteint": "completed", "abandonne": "cancelled", "clos": "completed"}
GOAL_ACHIEVED = {"en_cours": "in-progress", "atteint": "achieved", "clos": "not-achieved"}   # abandoned: none
MEMBER_STATES = ("invited", "joined", "circle")   # in the team (or its circle) now
COORDINATION = "Coordination du parcours"
_M = TypeVar("_M", bound=FHIRAbstractModel)
_NAMESPACE = uuid.UUID("5b0c6a52-8f0e-4a57-9d0c-6f1e0d3c2a11")   # stable ids: the same fact, the same urn:uuid


# -- the facts ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    user_id: str
    state: str
    since: int                       # ms: when the member came to this state
    person: RosterMember | None      # None: not on the structure's roster


@dataclass(frozen=True)
class PathwayFacts:
    pathway: Pathway
    patient: Patient
    type_label: str
    members: tuple[Member, ...]
    people: dict[str, RosterMember]                      # the roster, for task owners and authors
    tasks: tuple[tuple[Task, tuple[TaskEvent, ...]], ...]
    consents: tuple[Consent, ...]
    objections: tuple[Objection, ...]
    documents: tuple[Document, ...]
    plan: Plan | None = None                             # the care plan (PPCS), when it has been written
    versions: tuple[Version, ...] = ()
    decisions: dict[str, tuple[Rcp, RcpDecision]] = field(default_factory=dict)   # task id -> the RCP decision


class _Pathways(Protocol):
    async def patient(self, patient_id: str) -> Patient: ...
    async def members_since(self, pathway_id: str) -> list[tuple[str, str, int]]: ...


class _Roster(Protocol):
    async def members(self) -> list[RosterMember]: ...


class _Tasks(Protocol):
    async def of_pathway(self, pathway_id: str) -> list[Task]: ...
    async def histories(self, pathway_id: str) -> dict[str, list[TaskEvent]]: ...


class _CarePlans(Protocol):
    async def plan(self, pathway_id: str) -> Plan: ...
    async def versions(self, pathway_id: str) -> list[Version]: ...


class _Consents(Protocol):
    async def will(self, patient_id: str) -> Will: ...


class _Documents(Protocol):
    async def of_pathway(self, pathway_id: str) -> list[Document]: ...


class _Meetings(Protocol):
    async def decisions_of_pathway(self, pathway_id: str) -> dict[str, tuple[Rcp, RcpDecision]]: ...


class ExportPorts(Protocol):
    """What an export reads (the bot's `Services`, the command line's `Shared`)."""
    @property
    def pathways(self) -> _Pathways: ...
    @property
    def roster(self) -> _Roster: ...
    @property
    def tasks(self) -> _Tasks: ...
    @property
    def consents(self) -> _Consents: ...
    @property
    def documents(self) -> _Documents: ...
    @property
    def care_plans(self) -> _CarePlans: ...
    @property
    def rcp(self) -> _Meetings | None: ...


async def gather(stores: ExportPorts, pathway: Pathway, type_label: str) -> PathwayFacts:
    """Every fact of `pathway` the Bundle carries, read now."""
    patient = await stores.pathways.patient(pathway.patient_id)
    people = {m.user_id: m for m in await stores.roster.members()}
    members = tuple(Member(u, state, at, people.get(u)) for u, state, at in await stores.pathways.members_since(pathway.id)
                    if state in MEMBER_STATES)
    tasks = await stores.tasks.of_pathway(pathway.id)
    histories = await stores.tasks.histories(pathway.id)
    will = await stores.consents.will(pathway.patient_id)
    documents = await stores.documents.of_pathway(pathway.id)
    plan = await stores.care_plans.plan(pathway.id)
    versions = await stores.care_plans.versions(pathway.id)
    decisions = await stores.rcp.decisions_of_pathway(pathway.id) if stores.rcp is not None else {}
    return PathwayFacts(pathway, patient, type_label, members, people,
                        tuple((t, tuple(histories.get(t.id, ()))) for t in tasks), will.consents, will.objections,
                        tuple(documents), None if plan.empty else plan, tuple(versions), decisions)


# -- the bundle --------------------------------------------------------------------------------------------------

def bundle(facts: PathwayFacts, now: datetime) -> dict[str, Any]:
    """The pathway as a FHIR R4 `collection` Bundle (a JSON-ready dict), stamped `now`."""
    return _Builder(facts, now).build()


def counts(exported: dict[str, Any]) -> Counter[str]:
    """How many resources of each type the Bundle holds."""
    return Counter(e["resource"]["resourceType"] for e in exported.get("entry", []))


def _make(model: type[_M], **fields: Any) -> _M:
    """The model validated from its JSON fields (None: left out): the library checks types, formats, cardinalities."""
    return model.model_validate({k: v for k, v in fields.items() if v is not None})


def _ref(urn: str, display: str | None = None) -> dict[str, Any]:
    return {"reference": urn} | ({"display": display} if display else {})


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date().isoformat()


def _period(start: int | None, end: int | None) -> dict[str, str]:
    return {k: _when(v) for k, v in (("start", start), ("end", end)) if v is not None}


def _profession(key: str | None, label: str | None = None) -> dict[str, Any]:
    """A profession as a CodeableConcept: its TRE_G15 code when it has one, its label as text."""
    p = find_profession(key) if key else None
    if p is None:
        return {"text": label or key or "profession inconnue"}
    coding = [{"system": PROFESSION_SYSTEM, "code": p.code, "display": p.label}] if p.code else []
    return {"text": label or p.label} | ({"coding": coding} if coding else {})


@dataclass
class _Builder:
    facts: PathwayFacts
    now: datetime
    entries: list[BundleEntry] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)     # user id -> the urn of its PractitionerRole

    def urn(self, kind: str, key: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}:{key}')}"

    def add(self, urn: str, resource: Resource) -> str:
        self.entries.append(_make(BundleEntry, fullUrl=urn, resource=resource))
        return urn

    def build(self) -> dict[str, Any]:
        f = self.facts
        pathway = f.pathway
        self.patient = self.add(self.urn("patient", f.patient.id), self._patient())
        self.careteam = self.urn("careteam", pathway.id)
        self.careplan = self.urn("careplan", pathway.id)
        participants = [self._participant(m) for m in f.members]
        self.add(self.urn("episode", pathway.id), _make(EpisodeOfCare, 
            id=self._id(self.urn("episode", pathway.id)), identifier=[{"value": pathway.code}],
            status="active" if pathway.status == "open" else "finished", type=[{"text": f.type_label}],
            patient=_ref(self.patient), period=_period(pathway.opened_at, pathway.closed_at),
            team=[_ref(self.careteam)]))
        self.add(self.careteam, _make(CareTeam, 
            id=self._id(self.careteam), meta={"lastUpdated": self.now.isoformat(timespec="seconds")},
            identifier=[{"value": pathway.code}], status="active" if pathway.status == "open" else "inactive",
            name=f"Équipe de soins — {f.type_label} ({pathway.code})", subject=_ref(self.patient),
            period=_period(pathway.opened_at, pathway.closed_at), participant=participants or None))
        plan = f.plan
        self.goals = {g.number: self._goal(g) for g in (plan.goals if plan else ())}
        tasks = [self._task(t, history) for t, history in f.tasks]
        writers = list(dict.fromkeys(v.actor for v in f.versions if v.actor.startswith("@")))
        words = ([{"authorReference": _ref(self.patient), "time": _when(plan.updated_at or pathway.opened_at),
                   "text": plan.words}] if plan and plan.words else None)
        self.add(self.careplan, _make(CarePlan, 
            id=self._id(self.careplan), identifier=[{"value": pathway.code}],
            status="active" if pathway.status == "open" else "completed", intent="plan",
            title=f"Plan personnalisé de coordination en santé — {f.type_label} ({pathway.code})",
            subject=_ref(self.patient), period=_period(pathway.opened_at, pathway.closed_at),
            author=_ref(self.role(plan.referent)) if plan and plan.referent else None,
            contributor=[_ref(self.role(u)) for u in writers] or None, careTeam=[_ref(self.careteam)],
            goal=[_ref(urn) for urn in self.goals.values()] or None, note=words,
            activity=[{"reference": _ref(urn)} for urn in tasks] or None))
        for i, c in enumerate(f.consents):
            self._consent(i, c)
        for i, o in enumerate(f.objections):
            self._objection(i, o)
        for d in f.documents:
            self._document(d)
        return _make(Bundle, type="collection", timestamp=self.now.isoformat(timespec="seconds"),
                      identifier={"system": URI_SYSTEM, "value": self.urn("bundle", f"{pathway.id}:{self.now}")},
                      entry=self.entries).model_dump(mode="json")

    @staticmethod
    def _id(urn: str) -> str:
        return urn.removeprefix("urn:uuid:")

    def _patient(self) -> FhirPatient:
        p = self.facts.patient
        urn = self.urn("patient", p.id)
        return _make(FhirPatient, id=self._id(urn), identifier=[{"use": "official", "system": f"urn:oid:{p.ins_oid}",
                                                         "value": p.ins}],
                           name=[{"use": "official", "family": p.birth_name, "given": p.first_names.split()}],
                           gender={"F": "female", "M": "male"}.get(p.sex, "unknown"),
                           birthDate=p.birth_date.isoformat())

    def role(self, user_id: str) -> str:
        """The PractitionerRole of `user_id` (and its Practitioner), added once; its urn."""
        if user_id in self.roles:
            return self.roles[user_id]
        person = self.facts.people.get(user_id)
        practitioner, urn = self.urn("practitioner", user_id), self.urn("role", user_id)
        identifier = None
        if person and person.professional_id:
            try:
                kind, value = check_professional_id(person.professional_id)
                identifier = [{"use": "official", "system": IDNPS_SYSTEM, "value": IDNPS_PREFIX[kind] + value}]
            except ProfessionalIdError:
                identifier = None
        self.add(practitioner, _make(Practitioner, 
            id=self._id(practitioner), identifier=identifier,
            name=[{"text": person.display_name if person else user_id}],
            telecom=[{"system": "url", "value": f"https://matrix.to/#/{user_id}"}] if user_id.startswith("@") else None))
        codes = [_profession(person.profession.key, person.profession_label)] if person else []
        if person and person.coordinator:
            codes.append({"text": COORDINATION})
        self.add(urn, _make(PractitionerRole, 
            id=self._id(urn), active=True, practitioner=_ref(practitioner, person.display_name if person else None),
            organization={"display": person.structure} if person and person.structure else None,
            code=codes or None))
        self.roles[user_id] = urn
        return urn

    def _participant(self, m: Member) -> dict[str, Any]:
        roles = [_profession(m.person.profession.key, m.person.profession_label)] if m.person else []
        if m.person and m.person.coordinator:
            roles.append({"text": COORDINATION})
        return {"role": roles or None, "member": _ref(self.role(m.user_id), m.person.display_name if m.person else None),
                "period": {"start": _when(m.since)}}

    def _task(self, t: Task, history: tuple[TaskEvent, ...]) -> str:
        urn = self.urn("task", t.id)
        taken = next((e.at for e in history if e.what == "prise"), None)
        done = max((e.at for e in history if e.what == "faite"), default=None) if t.state == "faite" else None
        notes = [{"text": f"Récurrence : {t.recurrence}"}] if t.recurrence else None
        return self.add(urn, _make(FhirTask, 
            id=self._id(urn), identifier=[{"value": f"{self.facts.pathway.code}/{t.number}"}],
            basedOn=[_ref(self.careplan), *self._decision(t)], status=TASK_STATUS[t.state], businessStatus={"text": TASK_STATE_LABEL[t.state]},
            intent="order", description=t.text, **{"for": _ref(self.patient)}, authoredOn=_when(t.created_at),
            lastModified=_when(t.updated_at), requester=_ref(self.role(t.created_by)) if t.created_by.startswith("@") else None,
            owner=_ref(self.role(t.owner)) if t.owner else None,
            performerType=[_profession(t.profession)] if t.profession else None,
            executionPeriod=_period(taken, done) or None,
            restriction={"period": {"end": _when(t.due_at)}} if t.due_at is not None else None, note=notes,
            reasonReference=_ref(self.goals[t.goal]) if t.goal in self.goals else None))

    def _goal(self, g: Goal) -> str:
        urn = self.urn("goal", g.id)
        achieved = GOAL_ACHIEVED.get(g.state)
        return self.add(urn, _make(FhirGoal, 
            id=self._id(urn), identifier=[{"value": f"{self.facts.pathway.code}/objectif/{g.number}"}],
            lifecycleStatus=GOAL_LIFECYCLE[g.state],
            achievementStatus={"coding": [{"system": GOAL_ACHIEVEMENT, "code": achieved}]} if achieved else None,
            description={"text": g.text}, subject=_ref(self.patient), startDate=_day(g.created_at),
            statusDate=_day(g.reached_at or g.updated_at),
            expressedBy=_ref(self.role(g.created_by)) if g.created_by.startswith("@") else None))

    def _decision(self, t: Task) -> list[dict[str, Any]]:
        """The RCP decision a task follows up: a logical reference (the meeting's code and the decision's number)."""
        if t.id not in self.facts.decisions:
            return []
        rcp, decision = self.facts.decisions[t.id]
        return [{"identifier": {"system": RCP_DECISION_SYSTEM, "value": f"{rcp.code}/{decision.number}"},
                 "display": f"Décision n° {decision.number} de la RCP {rcp.code} du "
                            f"{_when(rcp.starts_at)[:10]}"}]

    def _actor(self, kind: str, scope: str) -> dict[str, Any]:
        """Whom a consent or an objection names: a resource of the bundle when it is a person of the structure,
        else its name in `display`."""
        if kind == "person" and scope in self.facts.people:
            reference = _ref(self.role(scope), self.facts.people[scope].display_name)
        elif kind == "person":
            reference = {"display": scope}
        elif kind == "profession":
            p, sp = find_profession(scope), find_specialty(scope)
            what = f"la profession {p.label}" if p else f"la spécialité {sp.field}" if sp else f"la profession {scope}"
            reference = {"type": "PractitionerRole", "display": f"Toute personne de {what}"}
        elif kind == "structure":
            reference = {"type": "Organization", "display": scope}
        else:   # category: the non-health professionals
            reference = {"display": "Les professionnels hors santé (social, médico-social, autres)"}
        return {"role": {"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
                "reference": reference}

    def _consent_resource(self, urn: str, *, active: bool, rule: str, kind: str, scope: str, at: datetime,
                          end: datetime | None, categories: frozenset[str] = frozenset()) -> None:
        permit = rule == "OPTIN"
        provision: dict[str, Any] = {"type": "permit" if permit else "deny", "actor": [self._actor(kind, scope)],
                                     "period": {"start": at.isoformat(timespec="seconds")}
                                     | ({"end": end.isoformat(timespec="seconds")} if end else {})}
        if categories:
            provision["code"] = [{"text": c} for c in sorted(categories)]
        self.add(urn, _make(FhirConsent, 
            id=self._id(urn), status="active" if active else "inactive",
            scope={"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}]},
            category=[{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}],
                       "text": "Consentement au partage" if permit else "Opposition au partage"}],
            patient=_ref(self.patient), dateTime=at.isoformat(timespec="seconds"), performer=[_ref(self.patient)],
            policyRule={"coding": [{"system": ACT_CODE, "code": rule}], "text": "CSP L.1110-4"},
            provision=provision))

    def _consent(self, i: int, c: Consent) -> None:
        urn = self.urn("consent", f"{self.facts.patient.id}:{i}:{c.scope_kind}:{c.scope}:{c.recorded_at}")
        self._consent_resource(urn, active=consent_in_force(c, self.now), rule="OPTIN", kind=c.scope_kind,
                               scope=c.scope, at=c.recorded_at, end=c.withdrawn_at or c.expires_at,
                               categories=c.categories)

    def _objection(self, i: int, o: Objection) -> None:
        urn = self.urn("objection", f"{self.facts.patient.id}:{i}:{o.scope_kind}:{o.scope}:{o.recorded_at}")
        self._consent_resource(urn, active=objection_in_force(o), rule="OPTOUT", kind=o.scope_kind, scope=o.scope,
                               at=o.recorded_at, end=o.lifted_at)

    def _document(self, d: Document) -> None:
        urn = self.urn("document", d.id)
        type_: dict[str, Any] = {"text": doctype_label(d.doctype)}
        if d.type_code:
            type_["coding"] = [{"system": LOINC, "code": d.type_code}]
        identifier = None
        if d.sha256:
            digest = base64.urlsafe_b64encode(bytes.fromhex(d.sha256)).decode().rstrip("=")
            identifier = [{"system": URI_SYSTEM, "value": f"ni:///sha-256;{digest}"}]
        author = (_ref(self.role(d.author), d.author_name) if d.author.startswith("@")
                  else {"display": d.author_name or d.author})
        attachment = {k: v for k, v in (("contentType", d.mime), ("size", d.size),
                                        ("creation", _when(d.created_at))) if v is not None}
        self.add(urn, _make(DocumentReference, 
            id=self._id(urn), identifier=identifier, status="current", type=type_, subject=_ref(self.patient),
            date=_when(d.created_at), author=[author], description=d.title, content=[{"attachment": attachment}]))
