"""`!parcours ouvrir`: its form, then open (or resume opening) the patient's space and room.

Every step is stored as soon as it is done (space id, room id, summary event), so that an
opening interrupted by a homeserver failure resumes where it stopped when the same command
is typed again, instead of leaving a half-made room behind.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime
from collections.abc import Awaitable
from html import escape
from typing import Protocol, TypedDict

import structlog

from bot.registry import ArgError, Field, Reply, fold
from liaison.enforcement import decide_at, decision_sentence
from liaison.sharing_facts import SharingStores
from liaison.stores.pathways import Pathway, PathwayStore, Patient
from liaison.stores.care_plan import CarePlanStore
from liaison.stores.tasks import TaskStore
from bot.members import PeoplePorts, Person, names as people_names, naming, person
from bot.protocols import offer
from bot.reply import room_link
from bot.room_specs import power_levels, room_initial_state, space_initial_state, space_link, summary_message
from liaison.matrix import txn_id
from policies.ins import Ins, InsError, TraitError, check_traits, parse_birth_date, parse_ins, parse_sex
from policies.naming import pathway_code, room_name, room_topic, space_name
from policies.pathway import find_pathway_type
from policies.professions import find_profession

log = structlog.get_logger(__name__)


def _ins(word: str) -> Ins:
    """Read as a production INS; the structure's test mode picks the OID when the request is made."""
    try:
        return parse_ins(word)
    except InsError as err:
        raise ArgError(f"INS refusé : {err.message}") from err


def _trait(parse):
    def read(word: str):
        try:
            return parse(word)
        except (TraitError, InsError) as err:
            raise ArgError(err.message) from err
    return read


def _team(word: str) -> tuple[str, ...]:
    return tuple(x for x in word.replace(" ", ",").split(",") if x)


def _looks_like_date(word: str) -> bool:
    digits = word.replace("/", "").replace("-", "").replace(".", "")
    return digits.isdigit() and len(digits) >= 6 and not word.isdigit()


# `!parcours ouvrir`: named (`--nom Durand`, a value of several words until the next field) in any order, or by
# position: INS, type (one or several words, up to the date of birth, or quoted), date of birth, sex, birth name,
# first names. Accents and English names of the fields are forgiven.
FORM = (
    Field("ins", "INS", "l'INS du patient (15 chiffres)", _ins, example="<INS>", one_word=True),
    Field("type", "type de parcours", "le type de parcours, en un ou plusieurs mots (!parcours types)",
          aliases=("parcours",), example="<type>", several=True),
    Field("naissance", "date de naissance", "la date de naissance, JJ/MM/AAAA ou AAAA-MM-JJ",
          _trait(parse_birth_date), aliases=("ne", "nee", "date", "birth"), example="03/05/1948", one_word=True,
          looks=_looks_like_date),
    Field("sexe", "sexe", "F ou M", _trait(parse_sex), aliases=("sex",), example="F", one_word=True),
    Field("nom", "nom de naissance", "le nom de naissance", aliases=("name",), example="<nom>"),
    Field("prenom", "prénoms", "les prénoms", aliases=("prenoms", "first"), example="<prénoms>", shown="prénoms"),
    Field("equipe", "équipe", "l'équipe à inviter : @comptes et professions séparés par des virgules (sinon "
          "l'équipe habituelle du patient)", _team, aliases=("team",), one_word=True, positional=False,
          required=False, shown="--equipe @compte,profession"),
)


@dataclass(frozen=True)
class OpenRequest:
    ins: Ins
    type_key: str
    type_label: str
    birth_date: date
    sex: str
    birth_name: str
    first_names: str
    team: tuple[str, ...] | None   # accounts and professions as typed; None: the patient's usual team


def request(args: dict, test_mode: bool, types: tuple[tuple[str, str], ...]) -> OpenRequest | str:
    """The fields bound by FORM, checked against the structure's settings and against each other: the request,
    or a French sentence saying what is wrong."""
    found = find_pathway_type(args["type"], types)
    if found is None:
        return f"Type de parcours inconnu « {args['type']} ». Tapez !parcours types pour la liste."
    ins = parse_ins(args["ins"].value, test_mode=test_mode)
    problems = check_traits(ins, args["naissance"], args["sexe"])
    if problems:
        return "L'INS ne correspond pas aux traits d'identité : " + " ".join(problems)
    return OpenRequest(ins, found[0], found[1], args["naissance"], args["sexe"], args["nom"], args["prenom"],
                       args.get("equipe") or None)


def _same(a: str, b: str) -> bool:
    return fold(a).replace("-", " ") == fold(b).replace("-", " ")


def identity_conflict(patient: Patient, req: OpenRequest) -> str | None:
    differs = []
    if not _same(patient.birth_name, req.birth_name):
        differs.append("le nom de naissance")
    if not _same(patient.first_names, req.first_names):
        differs.append("les prénoms")
    if patient.birth_date != req.birth_date:
        differs.append("la date de naissance")
    if patient.sex != req.sex:
        differs.append("le sexe")
    if not differs:
        return None
    return ("Cet INS est déjà connu avec une autre identité : " + ", ".join(differs) + " diffère(nt). "
            "Vérifiez l'identité (INS qualifié) ; rien n'a été créé.")


class _Names(TypedDict):
    """What a room's or a space's name is made of (policies/naming.py)."""
    first_names: str
    birth_name: str
    birth_year: int


class OpenerPorts(PeoplePorts, Protocol):
    """What opening a pathway, and posting its summary, reads and does (and naming its team)."""
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def care_plans(self) -> CarePlanStore: ...


class Opener:
    def __init__(self, services: OpenerPorts) -> None:
        self.s = services

    async def open(self, actor: str, req: OpenRequest) -> Reply:
        store = self.s.pathways
        patient = await store.patient_by_ins(req.ins.value)
        if patient is None:
            patient = await store.add_patient(ins=req.ins.value, oid=req.ins.oid, birth_name=req.birth_name,
                                              first_names=req.first_names, birth_date=req.birth_date, sex=req.sex,
                                              actor=actor)
        elif conflict := identity_conflict(patient, req):
            return Reply.plain(conflict)
        team, problem = await self._team(patient, req.team)
        if problem:
            return Reply.plain(problem)
        pathway = await store.in_progress(patient.id, req.type_key)
        if pathway and pathway.status == "open":
            return Reply.plain(f"Un parcours {req.type_label} est déjà ouvert pour ce patient ({pathway.code}) : "
                               f"{room_link(pathway.room_id or '')} — aucun doublon créé.")
        if pathway is None:
            pathway = await store.add_pathway(patient_id=patient.id, type_key=req.type_key,
                                              code=pathway_code(secrets.token_bytes(8)), actor=actor)
        if req.team is not None:
            await store.set_usual_team(patient.id, team, actor=actor)
        return await self._build(actor, patient, pathway, req.type_label, team)

    async def _team(self, patient: Patient, spec: tuple[str, ...] | None) -> tuple[list[str], str | None]:
        """The accounts named (directly or by profession), or the patient's usual team."""
        if spec is None:
            usual = await self.s.pathways.usual_team(patient.id)
            if not usual:
                return [], ("Précisez l'équipe de soins du patient avec --equipe (comptes ou professions), "
                            "par exemple --equipe @medecin:serveur,infirmier.")
            return usual, None
        members, team = await self.s.roster.members(), []
        for item in spec:
            if item.startswith("@"):
                team.append(item)
                continue
            profession = find_profession(item)
            if profession is None:
                return [], f"« {item} » n'est ni un compte (@nom:serveur) ni une profession connue."
            matching = [m.user_id for m in members if m.profession.key == profession.key]
            if not matching:
                return [], f"Personne dans l'équipe de la structure n'est {profession.label}."
            team += matching
        return sorted(set(team)), None

    async def _build(self, actor: str, patient: Patient, pathway: Pathway, label: str, team: list[str]) -> Reply:
        s, store, matrix = self.s.settings, self.s.pathways, self.s.matrix
        mode = s.naming
        names = _Names(first_names=patient.first_names, birth_name=patient.birth_name,
                       birth_year=patient.birth_date.year)
        roster = {m.user_id: m for m in await self.s.roster.members()}
        coordinators = sorted(u for u, m in roster.items() if m.coordinator)
        candidates = sorted(set(team) | set(coordinators) | ({actor} if actor in roster else set()))
        # Decided (and traced) now, also on a resumed opening.
        decisions = {u: (await decide_at(self.s.sharing, "room.invite", pathway=pathway, recipient=u, actor=actor)).decision
                     for u in candidates}
        invited = [u for u, d in decisions.items() if d.allowed and u != s.bot_user_id]

        room_coordinators = [u for u in invited if u in coordinators]

        async def make_space() -> str:
            """A new patient's space, made while the room is (linked to it once both exist). Nobody is invited to
            it: one invitation per pathway, the room's; its members may join the space from the room's parent."""
            if patient.space_id:
                return patient.space_id
            space = await matrix.create_room(
                name=space_name(mode, code=pathway.code, **names), topic="", initial_state=space_initial_state(),
                power_levels=power_levels(s.bot_user_id, coordinators), invite=[], space=True)
            await store.set_space(patient.id, space)
            return space

        async def make_room() -> str:
            if pathway.room_id:
                return pathway.room_id
            parent = [space_link("m.space.parent", patient.space_id, s.server_name)] if patient.space_id else []
            room = await matrix.create_room(
                name=room_name(mode, pathway_label=label, code=pathway.code, **names),
                topic=room_topic(mode, label), initial_state=room_initial_state() + parent,
                power_levels=power_levels(s.bot_user_id, room_coordinators, bridge=s.bridge_user_id),
                invite=invited + ([s.bridge_user_id] if s.bridge_user_id else []))
            await store.update(pathway.id, room_id=room)
            return room

        async def record_members() -> None:
            for user_id, d in decisions.items():
                await store.set_member(pathway.id, user_id, "invited" if d.allowed else "refused", d.rule)

        async def link_space(room_id: str, making: asyncio.Task) -> None:
            """The space lists the room and admits its members; the room names the space as its parent, unless it
            was made with it."""
            space = await making
            made_with_parent = bool(patient.space_id) and not pathway.room_id   # see make_room's initial state
            links = [matrix.set_state(space, "m.space.child", {"via": [s.server_name]}, state_key=room_id),
                     matrix.set_state(space, "m.room.join_rules", await admitting(space, room_id))]
            if not made_with_parent:
                links.append(matrix.set_state(room_id, "m.space.parent", {"via": [s.server_name], "canonical": True},
                                              state_key=space))
            await asyncio.gather(*links)

        async def admitting(space: str, room_id: str) -> dict:
            """The space's join rule: restricted to the members of its pathway rooms, this one added."""
            rule = await matrix.state_event(space, "m.room.join_rules") or {}
            allow = [a for a in rule.get("allow", []) if a.get("room_id") != room_id]
            return {"join_rule": "restricted", "allow": [*allow, {"type": "m.room_membership", "room_id": room_id}]}

        t0 = time.perf_counter()
        making_space = asyncio.create_task(make_space())
        try:
            room_id = await make_room()
        except BaseException:
            await asyncio.gather(making_space, return_exceptions=True)   # stored if made: a retry reuses it
            raise
        t1 = time.perf_counter()
        # The summary does not wait for the space: post it while the space is being made and linked.
        tasks: list[Awaitable[object]] = [link_space(room_id, making_space), record_members()]
        offered = offer(s.offers, s.protocols, pathway.type)   # offered in the room and in the answer, never applied
        if pathway.summary_event_id is None:
            tasks += [self.post_summary(pathway, patient, label, invited, room_id),
                      self._tell_who(room_id, pathway, decisions, offered)]
        await asyncio.gather(*tasks)
        t3 = time.perf_counter()
        await store.update(pathway.id, status="open")
        log.info("pathway.opened", pathway_id=pathway.id, room_id=room_id, invited=len(invited),
                 refused=len(decisions) - len(invited), create_ms=round((t1 - t0) * 1000),
                 link_and_post_ms=round((t3 - t1) * 1000), total_ms=round((time.perf_counter() - t0) * 1000))
        refused = len(decisions) - len(invited)
        return Reply.plain(f"Parcours {label} ouvert ({pathway.code}) : {room_link(room_id)} — "
                           f"{len(invited)} invitation(s)" + (f", {refused} refusée(s) : raisons dans le salon."
                                                              if refused else ".")
                           + (f"\n{offered} (dans le salon du parcours)." if offered else ""))

    async def post_summary(self, pathway: Pathway, patient: Patient, label: str, team: list[str],
                           room_id: str | None = None, *, note: str = "", salt: str = "") -> str:
        """Post the summary (encrypted) and pin it in place of the previous one; remember which devices can
        read it (those holding the room key it was sent with). `note` closes a summary posted again, as a last small
        line: the team reads the summary first."""
        store, matrix = self.s.pathways, self.s.matrix
        fields = await store.summary(pathway.id)
        identity = dict(birth_name=patient.birth_name, first_names=patient.first_names,
                        birth_date=patient.birth_date, sex=patient.sex, ins=patient.ins,
                        ins_kind="INS-NIA" if patient.ins[0] in "78" else "INS-NIR", oid=patient.ins_oid)
        text, html = summary_message(identity=identity, pathway_label=label, code=pathway.code,
                                     opened_by=(await person(self.s, pathway.opened_by)).text(),
                                     opened_on=datetime.fromtimestamp(pathway.opened_at / 1000).date(),
                                     fields=fields, team=await people_names(self.s, team))
        if note:
            text, html = f"{text}\n{note}", f"{html}<p><small>{escape(note)}</small></p>"
        version = ",".join(f"{k}{v[1]}" for k, v in sorted(fields.items())) or "v0"
        room_id = room_id or pathway.room_id
        if room_id is None:
            raise ValueError(f"pathway {pathway.id} has no room to post its summary in")
        txn = txn_id(pathway.id, "summary", version, *([salt] if salt else []))
        event_id, readers = await matrix.send_to_current_devices(room_id, _notice(text, html), txn)
        board = await self.s.tasks.board(pathway.id)   # the task board and the care plan stay pinned, after it
        plan = await self.s.care_plans.post(pathway.id)
        after = [e[0] for e in (board, plan) if e is not None]
        await matrix.set_state(room_id, "m.room.pinned_events", {"pinned": [event_id, *after]})
        await store.summary_posted(pathway.id, event_id, readers)
        return event_id

    async def _tell_who(self, room_id: str, pathway: Pathway, decisions: dict, offered: str = "") -> None:
        """Who was invited and who was not: people named while the summary and the space are being made; then the
        protocol its type offers, if any."""
        await self.s.matrix.send(room_id, await _who_message(self.s, decisions, offered), txn_id(pathway.id, "who"))

    async def post_current_summary(self, pathway: Pathway, *, note: str = "", salt: str = "") -> str:
        """The summary as it stands now, for the pathway's current team."""
        patient = await self.s.pathways.patient(pathway.patient_id)
        members = [u for u, state, _ in await self.s.pathways.members(pathway.id) if state in ("invited", "joined")]
        label = self.s.settings.type_label(pathway.type)
        return await self.post_summary(pathway, patient, label, members, note=note, salt=salt)


async def _who_message(services: PeoplePorts, decisions: dict, offered: str = "") -> dict:
    """Who was invited and who was not, with the rule: people by name and profession (pills in HTML); then `offered`
    (the protocol the pathway's type offers)."""
    people = {u: await person(services, u) for u in decisions}
    invited: list[str | Person] = [people[u] for u, d in decisions.items() if d.allowed]
    parts: list[str | Person] = ["Invité(e)s : ", *(invited[:1] or ["personne"])]
    for who in invited[1:]:
        parts += [", ", who]
    for u, d in decisions.items():
        if not d.allowed:
            parts += ["\nNon invité(e) : ", people[u], f" — {decision_sentence(d)}"]
    if offered:
        parts.append(f"\n{offered}")
    return naming(*parts)


def _notice(text: str, html: str) -> dict:
    return {"msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html", "formatted_body": html}

