"""policies.naming: room names and topics carry no identity beyond what the naming mode allows."""
from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from policies.naming import (CODE_ALPHABET, DEFAULT_PARTS, LEGACY, PARTS, circle_room_name, initials, naming_parts,
                             pathway_code, room_name, room_topic, space_name)

LABEL = "Insuffisance cardiaque"


FORMS = [frozenset(), frozenset({"initiales"}), frozenset({"initiales", "annee"}), frozenset({"type"}),
         frozenset({"initiales", "type"}), frozenset(PARTS)]


def test_the_default_is_the_code_and_the_initials_and_the_first_words_are_read_as_written():
    assert DEFAULT_PARTS == naming_parts(["initiales"]) == frozenset({"initiales"})
    assert naming_parts("initiales") == frozenset(PARTS) and naming_parts("pseudonyme") == {"type"}
    assert naming_parts([]) == frozenset() == LEGACY["code"]
    for bad, words in ((["nom"], "nom"), (["annee"], "qu'avec « initiales »"), ("nominatif", "une liste parmi")):
        with pytest.raises(ValueError, match=words):
            naming_parts(bad)


@pytest.mark.parametrize("entropy", [bytes(8), b"\xff" * 8, b"\x01\x02\x03\x04", bytes(range(16))])
def test_pathway_code_shape(entropy):
    code = pathway_code(entropy)
    assert re.fullmatch(r"P-[2-9A-HJKMNP-Z]{5}", code)
    assert not set(code[2:]) & set("0O1IL")


def test_pathway_code_is_deterministic_and_spread():
    assert pathway_code(b"abcdefgh") == pathway_code(b"abcdefgh")
    codes = {pathway_code(i.to_bytes(8, "big") * 1) for i in range(1000)}
    assert len(codes) == 1000
    assert set(CODE_ALPHABET).isdisjoint("0O1IL")


def test_pathway_code_needs_entropy():
    with pytest.raises(ValueError):
        pathway_code(b"abc")


@pytest.mark.parametrize("first_names, birth_name, expected", [
    ("Marcel", "Durand", "M. D."),
    ("marcel", "durand", "M. D."),
    ("Élise", "Martin", "É. M."),
    ("élise", "Éluard", "É. É."),
    ("Jean-Pierre", "Durand", "J.-P. D."),
    ("Jean-Pierre Marie Joseph", "Durand", "J.-P. D."),  # only the first first name
    ("Marcel", "Martin-Durand", "M. M.-D."),
    ("Marcel", "d'Artagnan", "M. D."),
    ("Marcel", "LE GALL", "M. L."),
    ("", "Durand", "D."),
])
def test_initials(first_names, birth_name, expected):
    assert initials(first_names, birth_name) == expected


def test_initials_need_a_letter():
    with pytest.raises(ValueError):
        initials("", " - ")


@pytest.mark.parametrize("shown, room, space", [
    (DEFAULT_PARTS, "M. D. · P-7K3Q9", "M. D."),
    (frozenset(), "P-7K3Q9", "Patient P-7K3Q9"),
    (frozenset({"initiales", "annee"}), "M. D. (1948) · P-7K3Q9", "M. D. (1948)"),
    (LEGACY["pseudonyme"], "P-7K3Q9 · Insuffisance cardiaque", "Patient P-7K3Q9"),
    (LEGACY["initiales"], "M. D. (1948) · P-7K3Q9 · Insuffisance cardiaque", "M. D. (1948)"),
])
def test_names_show_the_code_and_what_the_policy_allows(shown, room, space):
    kwargs = dict(first_names="Marcel", birth_name="Durand", birth_year=1948, code="P-7K3Q9")
    assert room_name(shown, pathway_label=LABEL, **kwargs) == room
    assert space_name(shown, **kwargs) == space


@pytest.mark.parametrize("shown", FORMS)
def test_room_topic_carries_the_type_only_when_the_name_may(shown):
    topic = room_topic(shown, LABEL)
    assert topic.startswith("Salon de liaison" + (" — parcours Insuffisance cardiaque." if "type" in shown else "."))
    assert (LABEL in topic) is ("type" in shown)
    for fragment in ("chiffrés", "message épinglé", "code du parcours"):
        assert fragment in topic
    assert ("initiales" in topic) is ("initiales" in shown)


LETTERS = "abcdefghijklmnopqrstuvwxyzéèêëàâçîïôöùûüÿæœ"
NAME = st.text(alphabet=LETTERS + LETTERS.upper(), min_size=3, max_size=20)
COMPOUND = st.lists(NAME, min_size=1, max_size=3).map("-".join)
YEAR = st.integers(min_value=1890, max_value=2025)


@given(first=COMPOUND, last=COMPOUND, year=YEAR, entropy=st.binary(min_size=8, max_size=8))
@example(first="AAA", last="LON", year=1890, entropy=bytes(8))   # « lon » in « salon »: not the patient's name
@example(first="Jeanne", last="Salon", year=1948, entropy=bytes(8))   # a surname that is a word of the topic
def test_names_never_carry_a_full_name(first, last, year, entropy):
    """No name of the patient is a word of a room's name, its space's name or its topic. (Words, not substrings:
    the surname « Lon » is no more in « salon de liaison » than « Salon » is the patient in it; found by CI.)"""
    code = pathway_code(entropy)
    for mode in FORMS:
        def texts(first_names: str, birth_name: str) -> list[str]:
            return [room_name(mode, first_names=first_names, birth_name=birth_name, birth_year=year,
                              pathway_label=LABEL, code=code),
                    space_name(mode, first_names=first_names, birth_name=birth_name, birth_year=year, code=code),
                    room_topic(mode, LABEL)]
        fixed = set().union(*map(_words, texts("Qqq", "Zzz")))   # the words every patient's names have
        for text in texts(first, last):
            for name in (first, last, *first.split("-"), *last.split("-")):
                assume(name.casefold() not in fixed and name.casefold() not in code.casefold())
                assert name.casefold() not in _words(text)


def _words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[^\W\d_]+", text)}


@given(first=COMPOUND, last=COMPOUND, year=YEAR, entropy=st.binary(min_size=8, max_size=8))
def test_the_code_alone_shows_no_initials_nor_year_nor_type(first, last, year, entropy):
    code = pathway_code(entropy)
    kwargs = dict(first_names=first, birth_name=last, birth_year=year, code=code)
    room = room_name(frozenset(), pathway_label=LABEL, **kwargs)
    space = space_name(frozenset(), **kwargs)
    assert room == code and space == f"Patient {code}"
    for text in (room, space, room_topic(frozenset(), LABEL)):
        assert str(year) not in text and LABEL not in text
        assert initials(first, last) not in text


@given(first=COMPOUND, last=COMPOUND, year=YEAR, entropy=st.binary(min_size=8, max_size=8))
def test_the_default_shows_no_year_nor_type(first, last, year, entropy):
    code = pathway_code(entropy)
    room = room_name(DEFAULT_PARTS, pathway_label=LABEL, first_names=first, birth_name=last, birth_year=year, code=code)
    assert room == f"{initials(first, last)} · {code}"
    assert str(year) not in room and LABEL not in room


@pytest.mark.parametrize("shown", FORMS)
def test_the_circle_room_s_name_carries_no_pathway_type(shown):
    """Non-health members read it, and the homeserver keeps it in clear: the code, and the allowed identity at most."""
    name = circle_room_name(shown, first_names="Marcel", birth_name="Durand", birth_year=1948, code="P-7K3Q9")
    assert "P-7K3Q9" in name and "cercle élargi" in name
    assert LABEL.lower() not in name.lower() and "Durand" not in name and "Marcel" not in name
    who = {frozenset(): "", frozenset({"type"}): ""}.get(shown, "M. D. (1948) · " if "annee" in shown else "M. D. · ")
    assert name == f"{who}P-7K3Q9 · cercle élargi"
