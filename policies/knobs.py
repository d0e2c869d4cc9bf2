"""The structure's sharing policy as data: each knob declared once (type, default, check, meaning).

`load_knobs(text)` reads the YAML text of a policy file (the caller reads the file) and
refuses an unknown knob, a wrong type or a bad value with a French message naming the line.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import yaml

from policies.documents import DOCUMENT_KINDS
from policies.naming import naming_parts
from policies.professions import PROFESSIONS, Category
from policies.sharing import Knobs

DATA_CATEGORIES = ("soins", "social", "administratif")
_KEYS = {p.key for p in PROFESSIONS}
_NON_HEALTH = {p.key for p in PROFESSIONS if p.category is not Category.HEALTH}


class KnobError(ValueError):
    def __init__(self, line: int | None, message: str) -> None:
        self.line, self.message = line, (f"ligne {line} : " if line else "") + message
        super().__init__(self.message)


@dataclass(frozen=True)
class Knob:
    name: str
    kind: type[Any] | tuple[type[Any], ...]
    help: str
    check: Callable[[Any], str | None] = lambda value: None   # given a value already of `kind`
    read: Callable[[Any], Any] | None = None                  # the value kept, from one that passed `check`


def _roles(value) -> str | None:
    for role, categories in value.items():
        if role not in _NON_HEALTH:
            return f"« {role} » n'est pas un rôle non soignant connu ({', '.join(sorted(_NON_HEALTH))})"
        if not isinstance(categories, list) or any(c not in DATA_CATEGORIES for c in categories):
            return f"{role} : liste de catégories parmi {', '.join(DATA_CATEGORIES)} attendue"
    return None


def _health(value) -> str | None:
    unknown = [v for v in value if v not in _KEYS]
    return f"profession(s) inconnue(s) : {', '.join(map(str, unknown))}" if unknown else None


def _naming(value) -> str | None:
    try:
        naming_parts(value)
    except ValueError as err:
        return str(err)
    return None


def _document_kinds(value) -> str | None:
    unknown = [v for v in value if v not in DOCUMENT_KINDS]
    return (f"type(s) de fichier inconnu(s) : {', '.join(map(str, unknown))} (types : {', '.join(DOCUMENT_KINDS)})"
            if unknown else None)


KNOBS = (
    Knob("non_health_roles", dict, "rôles non soignants admis et catégories d'informations qu'ils reçoivent",
         _roles),
    Knob("non_health_needs_consent", bool, "un rôle non soignant n'entre qu'avec le consentement du patient"),
    Knob("notice_required", bool, "le patient doit avoir été informé de ce qui est partagé, et avec qui (R.1110-3)"),
    Knob("oral_consent_allowed", bool, "le consentement peut être recueilli oralement"),
    Knob("consent_recorders", str, "qui enregistre consentements et oppositions : coordination ou equipe",
         lambda v: None if v in ("coordination", "equipe") else "attendu coordination ou equipe"),
    Knob("consent_expiry_days", int, "durée d'un consentement enregistré sans date (0 : jusqu'au retrait)",
         lambda v: None if 0 <= v <= 36500 else "entre 0 et 36500 jours"),
    Knob("retention_days_after_closure", int, "conservation d'un parcours clos avant archivage (0 : au prochain passage)",
         lambda v: None if 0 <= v <= 36500 else "entre 0 et 36500 jours"),
    Knob("room_naming", (list, str), "ce que le nom des salons (non chiffré) montre en plus du code du parcours : "
         "une liste parmi initiales, annee, type", _naming, naming_parts),
    Knob("rooms_federate", bool, "les salons créés par Liaison peuvent être rejoints depuis d'autres serveurs Matrix "
         "(fédération) ; non par défaut : les données des patients restent sur le serveur de la structure"),
    Knob("mail_correspondents_in_team", bool, "un correspondant MSSanté qui a écrit au sujet du patient dans un "
         "parcours reçoit les réponses de l'équipe sans consentement (équipe de soins, L.1110-12)"),
    Knob("health_professions", list, "professions comptées comme professions de santé (CSP livre III partie IV)",
         _health),
    Knob("document_kinds", list, "types de fichiers indexés dans un parcours (pdf, image, cda, xml, text)",
         _document_kinds),
    Knob("document_max_mib", int, "taille maximale d'un fichier indexé dans un parcours, en Mio",
         lambda v: None if 1 <= v <= 200 else "entre 1 et 200 Mio"),
)
assert {k.name for k in KNOBS} == {f.name for f in fields(Knobs)}, "every knob declared once, and only once"


def load_knobs(text: str) -> Knobs:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise KnobError(mark.line + 1 if mark else None, f"YAML illisible ({getattr(err, 'problem', err)})") from None
    if root is None:
        return Knobs()
    if not isinstance(root, yaml.MappingNode):
        raise KnobError(root.start_mark.line + 1, "une liste de réglages « nom: valeur » est attendue")
    declared = {k.name: k for k in KNOBS}
    values: dict[str, Any] = {}
    for key_node, value_node in root.value:
        line, name = key_node.start_mark.line + 1, key_node.value
        knob = declared.get(name)
        if knob is None:
            raise KnobError(line, f"réglage inconnu « {name} » (réglages : {', '.join(declared)})")
        value: Any = yaml.safe_load(yaml.serialize(value_node))
        if not isinstance(value, knob.kind) or (knob.kind is int and isinstance(value, bool)):
            raise KnobError(line, f"{name} : {_KIND[knob.kind]} attendu")
        problem = knob.check(value)
        if problem:
            raise KnobError(line, f"{name} : {problem}")
        values[name] = (knob.read(value) if knob.read else {r: frozenset(c) for r, c in value.items()}
                        if knob.kind is dict else frozenset(value) if knob.kind is list else value)
    return Knobs(**values)


_KIND = {bool: "vrai ou faux (true/false)", str: "un texte", dict: "une table rôle: [catégories]",
         int: "un nombre entier", list: "une liste", (list, str): "une liste"}
