"""Room names and topics: they are NOT encrypted in Matrix, so they carry no identity beyond the mode's."""
from __future__ import annotations

from enum import Enum


class NamingMode(Enum):
    INITIALS = "initiales"  # "M. D. (1948) · Insuffisance cardiaque" (default)
    PSEUDONYMOUS = "pseudonyme"  # "P-7K3Q9 · Insuffisance cardiaque"


DEFAULT_MODE = NamingMode.INITIALS

# No 0/O, 1/I/L: a code read aloud on the phone or copied by hand stays unambiguous.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 5


def pathway_code(entropy: bytes) -> str:
    """A short pathway code like "P-7K3Q9" from random bytes (the caller passes secrets.token_bytes(8))."""
    if len(entropy) < 4:
        raise ValueError("pathway_code needs at least 4 bytes of entropy")
    number = int.from_bytes(entropy, "big")
    chars = []
    for _ in range(CODE_LENGTH):
        number, index = divmod(number, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    return "P-" + "".join(chars)


def _initial(word: str) -> str:
    """First letter of each hyphenated part, upper-cased with its accent: "jean-pierre" → "J.-P."."""
    parts = []
    for part in word.split("-"):
        letter = next((c for c in part if c.isalpha()), "")
        if letter:
            parts.append(letter.upper()[0] + ".")
    return "-".join(parts)


def initials(first_names: str, birth_name: str) -> str:
    """"Marcel", "Durand" → "M. D."; only the first of several first names is used."""
    first = _initial(next(iter((first_names or "").split()), ""))
    last = _initial(next(iter((birth_name or "").split()), ""))
    result = " ".join(x for x in (first, last) if x)
    if not result:
        raise ValueError("no letter in the first names nor in the birth name")
    return result


def space_name(mode: NamingMode, *, first_names: str, birth_name: str, birth_year: int, code: str) -> str:
    """The patient's space: "M. D. (1948)" or "Patient P-7K3Q9"."""
    if mode is NamingMode.PSEUDONYMOUS:
        return f"Patient {code}"
    return f"{initials(first_names, birth_name)} ({int(birth_year):04d})"


def room_name(mode: NamingMode, *, first_names: str, birth_name: str, birth_year: int,
              pathway_label: str, code: str) -> str:
    """"M. D. (1948) · Insuffisance cardiaque" or "P-7K3Q9 · Insuffisance cardiaque"."""
    if mode is NamingMode.PSEUDONYMOUS:
        return f"{code} · {pathway_label}"
    return f"{space_name(mode, first_names=first_names, birth_name=birth_name, birth_year=birth_year, code=code)}" \
           f" · {pathway_label}"


def circle_room_name(mode: NamingMode, *, first_names: str, birth_name: str, birth_year: int, code: str) -> str:
    """The circle room's name, seen by non-health members and kept in clear by the homeserver: no pathway type (a
    diagnosis, often): "M. D. (1948) · P-7K3Q9 · cercle élargi" or "P-7K3Q9 · cercle élargi"."""
    if mode is NamingMode.PSEUDONYMOUS:
        return f"{code} · cercle élargi"
    space = space_name(mode, first_names=first_names, birth_name=birth_name, birth_year=birth_year, code=code)
    return f"{space} · {code} · cercle élargi"


def room_topic(mode: NamingMode, pathway_label: str) -> str:
    """A French sentence: a Liaison pathway room, encrypted, no identity in its name or topic."""
    shown = ("le code du parcours" if mode is NamingMode.PSEUDONYMOUS
             else "les initiales et l'année de naissance")
    return (f"Salon de liaison — parcours {pathway_label}. Messages chiffrés de bout en bout ; "
            f"le nom du salon ne montre que {shown}, l'identité et le résumé du patient sont dans le "
            "message épinglé (chiffré).")
