"""Room names and topics: they are NOT encrypted in Matrix, so they carry nothing beyond what the policy allows."""
from __future__ import annotations

# What a room's name may show besides the pathway's code, which it always shows (policy knob `room_naming`). Room
# names are kept in clear by the homeserver and shown to every member, the circle room's non-health ones included.
PARTS = {
    "initiales": "les initiales du patient (« M. D. »)",
    "annee": "son année de naissance, après les initiales (« (1948) »)",
    "type": "le type de parcours (souvent un diagnostic : « Insuffisance cardiaque »), jamais au cercle élargi",
}
# The least revealing form a clinician still finds in a list of rooms: the code, and the initials.
DEFAULT_PARTS = frozenset({"initiales"})
# The two forms of the first policy files, read as they were written.
LEGACY = {"initiales": frozenset({"initiales", "annee", "type"}), "pseudonyme": frozenset({"type"}),
          "code": frozenset()}


def naming_parts(value: str | list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """The parts a policy file's `room_naming` allows: a list of PARTS, or one of the LEGACY words."""
    if isinstance(value, str):
        if value not in LEGACY:
            raise ValueError(f"« {value} » : une liste parmi {', '.join(PARTS)} est attendue (ou : "
                             f"{', '.join(LEGACY)})")
        return LEGACY[value]
    unknown = [v for v in value if v not in PARTS]
    if unknown:
        raise ValueError(f"partie(s) inconnue(s) : {', '.join(map(str, unknown))} (parties : {', '.join(PARTS)})")
    if "annee" in value and "initiales" not in value:
        raise ValueError("« annee » ne se montre qu'avec « initiales »")
    return frozenset(value)


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


def _who(shown: frozenset[str], first_names: str, birth_name: str, birth_year: int) -> str:
    if "initiales" not in shown:
        return ""
    letters = initials(first_names, birth_name)
    return f"{letters} ({int(birth_year):04d})" if "annee" in shown else letters


def space_name(shown: frozenset[str], *, first_names: str, birth_name: str, birth_year: int, code: str) -> str:
    """The patient's space: "M. D.", "M. D. (1948)", or "Patient P-7K3Q9" (the code of its first pathway)."""
    return _who(shown, first_names, birth_name, birth_year) or f"Patient {code}"


def room_name(shown: frozenset[str], *, first_names: str, birth_name: str, birth_year: int,
              pathway_label: str, code: str) -> str:
    """The code, after the initials when allowed, before the type when allowed: "M. D. · P-7K3Q9" (the default),
    "P-7K3Q9", "M. D. (1948) · P-7K3Q9 · Insuffisance cardiaque"."""
    who = _who(shown, first_names, birth_name, birth_year)
    return " · ".join(p for p in (who, code, pathway_label if "type" in shown else "") if p)


def circle_room_name(shown: frozenset[str], *, first_names: str, birth_name: str, birth_year: int, code: str) -> str:
    """The circle room's name, seen by non-health members and kept in clear by the homeserver: never the pathway
    type (a diagnosis, often): "M. D. · P-7K3Q9 · cercle élargi" or "P-7K3Q9 · cercle élargi"."""
    who = _who(shown, first_names, birth_name, birth_year)
    return " · ".join(p for p in (who, code, "cercle élargi") if p)


def room_topic(shown: frozenset[str], pathway_label: str) -> str:
    """A French sentence: a Liaison pathway room, encrypted, nothing more in clear than its name allows."""
    parts = ["le code du parcours"] + (["les initiales"] if "initiales" in shown else []) \
        + (["l'année de naissance"] if "annee" in shown else [])
    kind = f" — parcours {pathway_label}" if "type" in shown else ""
    return (f"Salon de liaison{kind}. Messages chiffrés de bout en bout ; le nom du salon ne montre que "
            f"{', '.join(parts[:-1]) + ' et ' + parts[-1] if len(parts) > 1 else parts[0]} ; l'identité et le résumé "
            "du patient sont dans le message épinglé (chiffré).")
