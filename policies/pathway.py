"""Who may be invited into a patient's pathway room; the pathway types."""
from __future__ import annotations

from dataclasses import dataclass, field

from policies.decision import Allow, Decision, Deny
from policies.professions import Category, Profession, fold

COORDINATOR = "coordinator"
MEMBER = "member"


@dataclass(frozen=True)
class Member:
    """Someone on the structure's roster."""
    user_id: str
    profession: Profession | None
    roles: frozenset[str] = field(default_factory=lambda: frozenset({MEMBER}))


def may_join_pathway(member: Member | None, user_id: str, team: frozenset[str] | None) -> Decision:
    """May `user_id` be invited into this patient's pathway room?

    `member` is None when `user_id` is not on the roster; `team` names this patient's team of care
    (None: every health professional of the roster).
    """
    if member is not None and member.user_id != user_id:
        raise ValueError(f"member {member.user_id} is not {user_id}")
    if member is None:
        return Deny("pathway.outsider",
                    "Ce professionnel ne figure pas dans l'annuaire de la structure : hors de l'équipe de soins, "
                    "enregistrez d'abord le consentement du patient (!consentement …), puis invitez-le.",
                    "CSP L.1110-4 III")
    if COORDINATOR in member.roles:
        return Allow("pathway.team.coordination",
                     "Coordinateur de la structure : il coordonne la prise en charge par l'équipe de soins.",
                     "CSP L.1110-12")
    if member.profession is None or member.profession.category is not Category.HEALTH:
        what = ("Sa profession n'est pas renseignée dans l'annuaire de la structure"
                if member.profession is None else
                f"{member.profession.label} n'est pas une profession de santé")
        return Deny("pathway.non_health",
                    f"{what} : il ne peut recevoir que les informations utiles à sa mission, après information "
                    "du patient ; enregistrez d'abord le consentement du patient (!consentement …).",
                    "CSP L.1110-4 II, R.1110-2")
    if team is None or user_id in team:
        return Allow("pathway.team.health",
                     f"{member.profession.label} de la structure, membre de l'équipe de soins du patient.",
                     "CSP L.1110-4 II et III, L.1110-12")
    return Deny("pathway.not_in_team",
                f"{member.profession.label} de la structure, mais pas nommé dans l'équipe de soins de ce "
                "patient : ajoutez-le à l'équipe, ou enregistrez d'abord le consentement du patient "
                "(!consentement …).",
                "CSP L.1110-4 III")


PATHWAY_TYPES: tuple[tuple[str, str], ...] = (
    ("insuffisance-cardiaque", "Insuffisance cardiaque"),
    ("diabete", "Diabète"),
    ("sortie-hospitalisation", "Sortie d'hospitalisation"),
    ("soins-palliatifs", "Soins palliatifs"),
    ("grossesse", "Grossesse"),
    ("personne-agee-fragile", "Personne âgée fragile"),
    ("bpco", "BPCO"),
    ("autre", "Autre"),
)

MIN_PREFIX = 4


def _words(text: str) -> list[str]:
    spaced = "".join(c if c.isalnum() else " " for c in text)
    return [fold(w) for w in spaced.split() if fold(w)]


def find_pathway_type(text: str, types=PATHWAY_TYPES) -> tuple[str, str] | None:
    """The pathway type named by `text`: exact key or label, else an unambiguous prefix (≥ 4 letters)
    of the key or label or of one of their words ("insuf", "palliatif", "sortie"); None otherwise."""
    wanted = fold(text)
    if not wanted:
        return None
    for key, label in types:
        if wanted in (fold(key), fold(label)):
            return key, label
    if len(wanted) < MIN_PREFIX:
        return None
    found = []
    for key, label in types:
        tails = set()
        for name in (key, label):
            words = _words(name)
            tails.update("".join(words[i:]) for i in range(len(words)))
        if any(tail.startswith(wanted) for tail in tails):
            found.append((key, label))
    return found[0] if len(found) == 1 else None
