"""`!consentement`, `!opposition`, `!consentements`: the patient's will, recorded in the pathway's room.

A consent opens sharing outside the team of care; an objection closes it at once: after
either changes, the room's members are evaluated again (bot/enforce.py). Each change is
written by the store with its trace entry (policies/records.py, liaison/stores/facts.py), and the reply gives its
number.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Protocol

from bot.directory_lookup import DirectoryPorts, Named, mailbox
from bot.ports import ConsentsPort, TracePort
from bot.registry import Arg, ArgError, Audience, Context, Reply, command, fold, group
from bot.enforce import EnforcePorts
from bot.facts_changed import patient_changed
from bot.members import names, person
from bot.rooms import CIRCLE_NO_CHANGE, ShowPorts, may_show
from liaison.clock import Clock
from liaison.stores.pathways import Pathway
from liaison.enforcement import decision_sentence, team_rule
from policies.professions import find_profession, find_specialty

class ConsentPorts(EnforcePorts, ShowPorts, DirectoryPorts, Protocol):
    """What the patient's will reads and changes: consents and objections, the trace, the clock, the knobs; then
    the rooms evaluated again (bot/enforce.py), and people named (by the directory too: an RPPS, a name)."""
    @property
    def consents(self) -> ConsentsPort: ...
    @property
    def trace(self) -> TracePort: ...
    @property
    def clock(self) -> Clock: ...


MEANS = {"oral": "oral", "ecrit": "écrit", "electronique": "électronique"}
CATEGORIES = ("soins", "social", "administratif")
OBJECTION_CATEGORIES = {"social": "social", "non-sante": "non-sante", "nonsante": "non-sante"}


def parse_scope(word: str, *, objection: bool = False) -> tuple[str, str, str] | str:
    """(kind, scope, label) for a person, a profession (in one or several words), a structure (its name may have
    several words) or, for objections, a category."""
    word = word.strip()
    if word.startswith("@") and ":" in word and not any(c.isspace() for c in word):
        return "person", word, word
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", word, flags=re.I):
        return "person", word.lower(), word.lower()
    if fold(word).startswith("structure:") and len(word) > len("structure:"):
        name = word.split(":", 1)[1]
        return "structure", name, f"la structure {name}"
    if objection and fold(word) in OBJECTION_CATEGORIES:
        category = OBJECTION_CATEGORIES[fold(word)]
        return "category", category, f"les professionnels {'du social' if category == 'social' else 'hors santé'}"
    profession = find_profession(word)
    if profession:
        return "profession", profession.key, f"la profession {profession.label.lower()}"
    specialty = find_specialty(word)   # known of an external address by the directory (liaison/sharing_facts.py)
    if specialty:
        return "profession", specialty.key, f"la spécialité {specialty.field}"
    return f"« {word} » : ni un compte (@nom:serveur), ni une adresse MSSanté, ni une profession connue."


def _not_recorder(ctx: Context[ConsentPorts], what: str) -> Reply | None:
    """Why `what` cannot be recorded by this person (the consent_recorders knob); None when it can."""
    if ctx.is_coordinator or ctx.services.knobs.consent_recorders == "equipe":
        return None
    return Reply.plain(f"Enregistrer {what} est réservé à la coordination (réglage consent_recorders).")


def _scope(word: str) -> tuple[str, str, str] | Named:
    """The scope typed; a word that is none, but may name a professional of the directory (an RPPS, a name), is
    left to the handler (`_resolved`); one with an @ is refused."""
    found = parse_scope(word)
    if isinstance(found, str):
        if "@" in word or not word.strip():
            raise ArgError(found)
        return Named(word.strip())
    return found


def _objection_scope(word: str) -> tuple[str, str, str]:
    """Strict: a word that is no scope is refused at once, so that a mistyped sub-command (`!opposition leve x`) is
    still hinted (bot/parsing.py), never looked up in the directory."""
    found = parse_scope(word, objection=True)
    if isinstance(found, str):
        raise ArgError(found)
    return found


async def _resolved(ctx: Context[ConsentPorts], scoped: tuple[str, str, str] | Named, *,
                    again: str) -> tuple[str, str, str] | Reply:
    """(kind, scope, whom the directory resolved it from: « » when typed as it is); an RPPS or a name is the MSSanté
    address of the one person the directory names: a person's scope, as if the address were typed."""
    if not isinstance(scoped, Named):
        return scoped[0], scoped[1], ""
    found = await mailbox(ctx, scoped, again=again, base=str(parse_scope(scoped.typed)))
    if isinstance(found, Reply):
        return found
    return "person", found.address, found.said


CONSENT_WHO = Arg("qui", "@compte, adresse MSSanté (ou n° RPPS, ou nom dans l'annuaire santé), profession (en un ou "
                         "plusieurs mots) ou structure:Nom",
                  rest=True, parse=_scope)
OBJECTION_WHO = Arg("qui", "@compte, profession (en un ou plusieurs mots) ou spécialité (cardiologue…), ou une "
                    "catégorie : social, non-santé",
                    rest=True, parse=_objection_scope)

# Recorded where the clinical team reads it (the pathway's clinical room), never in the circle room.
consentement = group("consentement", patient_data=True, en="consent", who=Audience.STAFF, room="pathway",
                     help="Enregistre ou retire le consentement du patient au partage hors de l'équipe de soins.")


@consentement.sub("enregistrer", en="record", aliases=["ajouter"],
                  args=[Arg("qui", "@compte, adresse MSSanté (ou n° RPPS, ou nom dans l'annuaire santé), profession "
                                   "(en un ou plusieurs mots) ou structure:Nom"),
                        Arg("recueil", "oral, écrit ou électronique ; puis, au choix, jusqu'au JJ/MM/AAAA "
                                       "et catégories:soins,social,administratif", rest=True)],
                  help="Enregistre le consentement du patient, et l'information qui lui a été donnée.")
async def _recording(ctx: Context[ConsentPorts]) -> Reply:
    pathway, refusal = ctx.room_pathway, _not_recorder(ctx, "un consentement")
    if refusal:
        return refusal
    words = ctx.words   # « qui » may be several words (« assistante sociale »): the line is cut at the means
    cut = next((i for i, w in enumerate(words) if i and fold(w) in MEANS), 1)
    try:
        scoped = _scope(" ".join(words[:cut]))
    except ArgError as err:
        return Reply.plain(f"{err.message} Utilisation : {ctx.usage}")
    found = await _resolved(ctx, scoped, again="!consentement enregistrer {rpps} écrit")
    if isinstance(found, Reply):
        return found
    kind, value, said = found
    done = await _record(ctx, pathway, kind, value, await _whom(ctx, kind, value), list(words[cut:]))
    return Reply.plain(said + done.text) if said else done


@consentement.sub("retirer", en="withdraw", args=[CONSENT_WHO], help="Retire un consentement : effet immédiat.")
async def _withdrawing(ctx: Context[ConsentPorts]) -> Reply:
    pathway, refusal = ctx.room_pathway, _not_recorder(ctx, "un consentement")
    if refusal:
        return refusal
    found = await _resolved(ctx, ctx.args["qui"], again="!consentement retirer {rpps}")
    if isinstance(found, Reply):
        return found
    kind, value, said = found
    label = await _whom(ctx, kind, value)
    refs = await ctx.services.consents.withdraw_consents(pathway.patient_id, kind, value, ctx.sender,
                                                         pathway_id=pathway.id)
    if not refs:
        return Reply.plain(f"{said}Aucun consentement en vigueur pour {label} : rien à retirer.")
    ref = _refs(refs)
    removed = await patient_changed(ctx.services, pathway, ctx.sender, "Consentement retiré")
    return Reply.plain(f"{said}Consentement retiré pour {label} (trace {ref})." + await _removed(ctx, removed))


async def _record(ctx: Context[ConsentPorts], pathway: Pathway, kind: str, value: str, label: str, words: list[str]) -> Reply:
    if not words or fold(words[0]) not in MEANS:
        return Reply.plain(f"Précisez le moyen du recueil : oral, écrit ou électronique. Utilisation : {ctx.usage}")
    means = MEANS[fold(words[0])]
    if means == "oral" and not ctx.services.knobs.oral_consent_allowed:
        return Reply.plain("Le consentement oral n'est pas accepté par la politique de la structure : recueillez-le "
                           "par écrit ou par voie électronique.")
    expires, categories = None, []
    for word in words[1:]:
        folded = fold(word)
        if folded.startswith("categories:"):
            categories = [c for c in folded.split(":", 1)[1].split(",") if c]
            bad = [c for c in categories if c not in CATEGORIES]
            if bad:
                return Reply.plain(f"Catégorie inconnue : {', '.join(bad)} (possibles : {', '.join(CATEGORIES)}).")
        elif folded in ("jusqu'au", "jusqu’au", "jusqua", "until"):
            continue
        else:
            day = _parse_day(word)
            if day is None:
                return Reply.plain(f"« {word} » n'est pas compris. Utilisation : {ctx.usage}")
            if day <= ctx.services.clock.now().astimezone().date():
                return Reply.plain(f"La date d'échéance {day:%d/%m/%Y} est déjà passée : rien n'a été enregistré.")
            expires = int(datetime(day.year, day.month, day.day, 23, 59, tzinfo=timezone.utc).timestamp() * 1000)
    if kind == "person":
        covered = await team_rule(ctx.services.sharing, pathway=pathway, user_id=value, actor=ctx.sender)
        if covered:
            return Reply.plain(f"{label} fait partie de l'équipe de soins : aucun consentement n'est nécessaire — "
                               f"{decision_sentence(covered)}. Rien n'a été enregistré.")
    if expires is None and ctx.services.knobs.consent_expiry_days:
        expires = ctx.services.clock.now_ms() + ctx.services.knobs.consent_expiry_days * 86_400_000
    notice = (f"Patient informé du partage des informations "
              f"({', '.join(categories) or 'toutes catégories'}) avec {label}.")
    ref = await ctx.services.consents.add_consent(pathway.patient_id, scope_kind=kind, scope=value, means=means,
                                                  categories=categories, notice=notice, actor=ctx.sender,
                                                  expires_at=expires, pathway_id=pathway.id)
    until = f" jusqu'au {datetime.fromtimestamp(expires / 1000):%d/%m/%Y}" if expires else ""
    invite = " Vous pouvez maintenant l'inviter : !parcours inviter." if kind == "person" else ""
    return Reply.plain(f"Consentement {means} enregistré pour {label}{until} ; information du patient notée "
                       f"(R.1110-3 ; trace {ref}).{invite}")


opposition = group("opposition", patient_data=True, en="objection", who=Audience.STAFF, room="pathway",
                   default="enregistrer", help="Enregistre (ou lève) l'opposition du patient : effet immédiat.")


@opposition.sub("enregistrer", en="record", args=[OBJECTION_WHO],
                help="Enregistre l'opposition du patient au partage avec une personne, une profession ou une "
                     "catégorie : ceux qu'elle vise quittent le salon.")
async def _objecting(ctx: Context[ConsentPorts]) -> Reply:
    pathway, refusal = ctx.room_pathway, _not_recorder(ctx, "une opposition")
    if refusal:
        return refusal
    kind, value, _typed = ctx.args["qui"]
    label = await _whom(ctx, kind, value)
    ref = await ctx.services.consents.add_objection(pathway.patient_id, scope_kind=kind, scope=value,
                                                    actor=ctx.sender, pathway_id=pathway.id)
    if ref is None:
        return Reply.plain(f"Une opposition est déjà en vigueur pour {label} : rien de plus n'a été enregistré.")
    removed = await patient_changed(ctx.services, pathway, ctx.sender, "Opposition du patient")
    return Reply.plain(f"Opposition enregistrée pour {label} : elle prend effet immédiatement (trace {ref})."
                       + await _removed(ctx, removed))


@opposition.sub("lever", en="lift", args=[OBJECTION_WHO], help="Lève une opposition du patient.")
async def _lifting(ctx: Context[ConsentPorts]) -> Reply:
    pathway, refusal = ctx.room_pathway, _not_recorder(ctx, "une opposition")
    if refusal:
        return refusal
    kind, value, _typed = ctx.args["qui"]
    label = await _whom(ctx, kind, value)
    refs = await ctx.services.consents.lift_objections(pathway.patient_id, kind, value, ctx.sender,
                                                       pathway_id=pathway.id)
    if not refs:
        return Reply.plain(f"Aucune opposition en vigueur pour {label}.")
    return Reply.plain(f"Opposition levée pour {label} (trace {_refs(refs)}).")


@command("consentements", patient_data=True, en="consents", who=Audience.STAFF, room="pathway",
         help="Liste les consentements et oppositions en vigueur pour le patient de ce salon.")
async def consentements(ctx: Context[ConsentPorts]) -> Reply:
    pathway = ctx.room_pathway   # the patient's will stays clinical-side: never shown in the circle room
    shown = await may_show(ctx, pathway, "administratif")
    if not shown.allowed:
        return Reply.plain(CIRCLE_NO_CHANGE)
    consents, objections = await ctx.services.consents.facts(pathway.patient_id)
    now = ctx.services.clock.now()
    lines = [f"Consentement {c.means} : {await _whom(ctx, c.scope_kind, c.scope)}, recueilli par "
             f"{(await person(ctx.services, c.recorded_by)).text()} le {c.recorded_at:%d/%m/%Y}"
             + (f", jusqu'au {c.expires_at:%d/%m/%Y}" if c.expires_at else "")
             for c in consents if c.withdrawn_at is None and (c.expires_at is None or c.expires_at > now)]
    lines += [f"Opposition : {await _whom(ctx, o.scope_kind, o.scope)}, depuis le {o.recorded_at:%d/%m/%Y}"
              for o in objections if o.lifted_at is None]
    return Reply.plain("En vigueur pour ce patient :\n" + ("\n".join(lines) or "aucun consentement ni opposition"))


async def _whom(ctx: Context[ConsentPorts], kind: str, scope: str) -> str:
    """Whom a consent or an objection covers, as a clinician reads it (a person or a correspondent by name and
    profession, never a Matrix id)."""
    if kind == "person":
        return (await person(ctx.services, scope)).text()
    if kind == "category":
        return parse_scope(scope, objection=True)[2] if scope in OBJECTION_CATEGORIES.values() else scope
    found = parse_scope(f"structure:{scope}" if kind == "structure" else scope)
    return found[2] if not isinstance(found, str) else scope


def _refs(refs: list[int]) -> str:
    """The trace entries of a change, for the reply: one per record it ended (« 12 » or « 12, 13 »)."""
    return ", ".join(str(r) for r in refs)


def _parse_day(word: str) -> date | None:
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(word, fmt).date()
        except ValueError:
            continue
    return None


async def _removed(ctx: Context[ConsentPorts], users: list[str]) -> str:
    return f" Retiré(s) du salon : {', '.join(await names(ctx.services, users))}." if users else ""


ALL = [consentement, opposition, consentements]
