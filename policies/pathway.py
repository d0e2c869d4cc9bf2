"""The pathway types (who may join a pathway is decided by policies/sharing.py)."""
from __future__ import annotations

from policies.professions import fold

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
        tails: set[str] = set()
        for name in (key, label):
            words = _words(name)
            tails.update("".join(words[i:]) for i in range(len(words)))
        if any(tail.startswith(wanted) for tail in tails):
            found.append((key, label))
    return found[0] if len(found) == 1 else None
