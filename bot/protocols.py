"""Protocols (protocoles pluriprofessionnels) as data: YAML templates read once at start, each step a task to create.

A protocol file holds one protocol: `nom` (the short name typed in `!protocole appliquer <nom>`), `titre`, an optional
`description` and its `etapes`; each step has `texte` (the task's text, kept as written), `profession` (a profession
of policies/professions.py: who it goes to), `delai` (« J+15 », « 15 jours », « 2 semaines », « 3 mois », « 0 »:
from the day it is applied), an optional `recurrence` (« chaque semaine »: the words bot/task_dates.py reads) and an
optional `categorie` (soins, social, administratif; soins by default). Keys are read without accents (`délai`).

Liaison ships a few (policies/protocols/); the structure's own folder (`pathways.protocols_folder`) adds to them, and
replaces a shipped protocol of the same name. A file that cannot be read stops the start with its name, the line and
the field (read from PyYAML's composed nodes: nothing is constructed but plain text).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from importlib import resources
from pathlib import Path

import yaml
from dateutil.relativedelta import relativedelta

from bot.task_dates import PARIS, read_recurrence
from bot.words import fold
from liaison.config import ConfigError
from liaison.stores.tasks import CATEGORIES, MAX_TEXT
from policies.professions import find_profession

_NAME = re.compile(r"^[a-z0-9-]{2,40}$")
_DELAY = re.compile(r"^(?:j\s*\+?\s*)?(\d{1,4})\s*(jours?|j|semaines?|sem|mois)?$")
_MAX_DAYS = 3 * 366
_TOP = ("nom", "titre", "description", "etapes")
_STEP = ("texte", "profession", "delai", "recurrence", "categorie")
# The protocol each default pathway type offers at its opening (a structure's own types name theirs: `protocol:`).
DEFAULT_OFFERS: tuple[tuple[str, str], ...] = (
    ("insuffisance-cardiaque", "insuffisance-cardiaque"),
    ("diabete", "diabete-type-2"),
    ("sortie-hospitalisation", "retour-a-domicile"),
)


class ProtocolError(ValueError):
    """A protocol file refused at start: the file, the line (1, 2, …) and the field, in French."""

    def __init__(self, file: str, line: int, field: str, message: str) -> None:
        super().__init__(f"protocole {file}, ligne {line}, champ « {field} » : {message}")
        self.file, self.line, self.field = file, line, field


@dataclass(frozen=True)
class Step:
    text: str
    profession: str          # a key of policies/professions.py
    days: int                # the delay from the day the protocol is applied
    months: int
    recurrence: str | None   # an RRULE (FREQ=…)
    category: str
    delay: str               # as written (« J+15 »)

    def due_at(self, now: datetime) -> int:
        """The step's due date from `now`: the end of that day (23:59) in Paris, as a task typed without an hour."""
        day: date = now.astimezone(PARIS).date() + relativedelta(days=self.days, months=self.months)
        return int(datetime.combine(day, time(23, 59), PARIS).timestamp() * 1000)


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    description: str
    steps: tuple[Step, ...]
    file: str
    name_line: int = 1   # where `nom` is written (a duplicate name is refused there)


@dataclass(frozen=True)
class Catalogue:
    """The structure's protocols, by name."""
    protocols: tuple[Protocol, ...] = ()

    def find(self, typed: str) -> Protocol | None:
        """The protocol named (or titled) `typed`, forgiving case, accents, spaces for hyphens."""
        wanted = _key(typed)
        return next((p for p in self.protocols if wanted in (_key(p.name), _key(p.title))), None)

    def names(self) -> list[str]:
        return [p.name for p in self.protocols]


def _key(text: str) -> str:
    return re.sub(r"[\s_-]+", "-", fold(text)).strip("-")


def shipped_folder() -> Path:
    return Path(str(resources.files("policies").joinpath("protocols")))


def load_protocols(folder: str = "") -> Catalogue:
    """The shipped protocols, then the structure's `folder` (its protocols replace shipped ones of the same name)."""
    shipped = _read_folder(shipped_folder())
    own = _read_folder(Path(folder), configured=True) if folder else {}
    return Catalogue(tuple(sorted({**shipped, **own}.values(), key=lambda p: p.name)))


def _read_folder(folder: Path, configured: bool = False) -> dict[str, Protocol]:
    if not folder.is_dir():
        if configured:
            raise ProtocolError(str(folder), 1, "pathways.protocols_folder", "dossier introuvable")
        return {}
    found: dict[str, Protocol] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        protocol = read_protocol(path.read_text(encoding="utf-8"), str(path))
        if protocol.name in found:
            raise ProtocolError(str(path), protocol.name_line, "nom",
                                f"« {protocol.name} » est déjà le nom du protocole de {found[protocol.name].file}")
        found[protocol.name] = protocol
    return found


def read_protocol(text: str, file: str) -> Protocol:
    """One protocol file's text (`file`: its name in the messages), or ProtocolError."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ProtocolError(file, mark.line + 1 if mark else 1, "(fichier)",
                            f"YAML illisible ({err.problem or err})") from None
    if root is None:
        raise ProtocolError(file, 1, "(fichier)", "fichier vide")
    fields = _mapping(file, root, "(fichier)", _TOP)
    name = _text(file, root, fields, "nom")
    if not _NAME.match(_key(name)):
        raise ProtocolError(file, _line(fields["nom"]), "nom",
                            f"« {name} » : lettres, chiffres et tirets (2 à 40), sans espace")
    title = _text(file, root, fields, "titre")
    description = _text(file, root, fields, "description", required=False)
    steps_node = fields.get("etapes")
    if not isinstance(steps_node, yaml.SequenceNode) or not steps_node.value:
        raise ProtocolError(file, _line(steps_node or root), "etapes", "une liste d'étapes (- texte: …) est attendue")
    steps = tuple(_step(file, node, f"etapes[{i}]") for i, node in enumerate(steps_node.value, 1))
    return Protocol(_key(name), title, description, steps, file, _line(fields["nom"]))


def _step(file: str, node: yaml.Node, where: str) -> Step:
    fields = _mapping(file, node, where, _STEP)
    text = _text(file, node, fields, "texte", where)
    if len(text) > MAX_TEXT:
        raise ProtocolError(file, _line(fields["texte"]), f"{where}.texte",
                            f"le texte d'une tâche tient en {MAX_TEXT} caractères ({len(text)} ici)")
    written = _text(file, node, fields, "profession", where)
    profession = find_profession(written)
    if profession is None:
        raise ProtocolError(file, _line(fields["profession"]), f"{where}.profession",
                            f"profession « {written} » inconnue (par exemple : infirmier, pharmacien, médecin)")
    delay = _text(file, node, fields, "delai", where)
    read = _DELAY.match(fold(delay))
    amount, unit = (int(read.group(1)), fold(read.group(2) or "jours")) if read else (0, "")
    days = amount * 7 if unit.startswith("sem") else 0 if unit == "mois" else amount
    months = amount if unit == "mois" else 0
    if read is None or days + months * 31 > _MAX_DAYS:
        raise ProtocolError(file, _line(fields["delai"]), f"{where}.delai",
                            f"« {delay} » n'est pas un délai que je sais lire (J+15, 15 jours, 2 semaines, 3 mois, 0 ; "
                            "trois ans au plus)")
    recurrence = None
    if "recurrence" in fields:
        written_rule = _text(file, node, fields, "recurrence", where)
        recurrence = read_recurrence(written_rule)
        if recurrence is None:
            raise ProtocolError(file, _line(fields["recurrence"]), f"{where}.recurrence",
                                f"« {written_rule} » n'est pas une récurrence que je sais lire (chaque jour, chaque "
                                "semaine, chaque mois)")
    category = "soins"
    if "categorie" in fields:
        written_category = _text(file, node, fields, "categorie", where)
        category = fold(written_category)
        if category not in CATEGORIES:
            raise ProtocolError(file, _line(fields["categorie"]), f"{where}.categorie",
                                f"catégorie « {written_category} » inconnue ; catégories : {', '.join(CATEGORIES)}")
    return Step(text, profession.key, days, months, recurrence, category, delay)


def _mapping(file: str, node: yaml.Node, where: str, known: Sequence[str]) -> dict[str, yaml.Node]:
    """The keys of a mapping node (folded: `délai` is `delai`), unknown or repeated ones refused."""
    if not isinstance(node, yaml.MappingNode):
        raise ProtocolError(file, _line(node), where, "une section (clé: valeur) est attendue")
    found: dict[str, yaml.Node] = {}
    for key_node, value in node.value:
        key = fold(str(key_node.value))
        named = key if where == "(fichier)" else f"{where}.{key}"
        if key not in known:
            raise ProtocolError(file, _line(key_node), named, f"clé inconnue ; clés possibles : {', '.join(known)}")
        if key in found:
            raise ProtocolError(file, _line(key_node), named, "clé écrite deux fois")
        found[key] = value
    return found


def _text(file: str, parent: yaml.Node, fields: dict[str, yaml.Node], key: str, where: str = "",
          required: bool = True) -> str:
    named = f"{where}.{key}" if where else key
    node = fields.get(key)
    if node is None:
        if required:
            raise ProtocolError(file, _line(parent), named, "champ obligatoire absent")
        return ""
    if not isinstance(node, yaml.ScalarNode):
        raise ProtocolError(file, _line(node), named, "un texte est attendu")
    value = str(node.value)
    if required and (not value.strip() or node.tag == "tag:yaml.org,2002:null"):
        raise ProtocolError(file, _line(node), named, "champ vide")
    return value


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def type_offers(types: Iterable[tuple[str, str]], catalogue: Catalogue) -> tuple[tuple[str, str], ...]:
    """(pathway type, protocol name) from the config's `pathways.types[i].protocol` (an unknown name refused, naming
    the key), or the default offers when the structure keeps Liaison's types."""
    offers = []
    for i, (key, named) in enumerate(types):
        if not named:
            continue
        found = catalogue.find(named)
        if found is None:
            raise ConfigError(f"pathways.types[{i}].protocol",
                              f"protocole « {named} » inconnu ; protocoles : {', '.join(catalogue.names())}")
        offers.append((key, found.name))
    return tuple(offers)


def offer(offers: Iterable[tuple[str, str]], catalogue: Catalogue, type_key: str) -> str:
    """The line that offers a pathway type's protocol at its opening (« » when it has none)."""
    name = dict(offers).get(type_key)
    found = catalogue.find(name) if name else None
    if found is None:
        return ""
    return f"Protocole proposé pour ce type de parcours : {found.title} — !protocole appliquer {found.name}"


def shown_at(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(PARIS):%d/%m/%Y}"
