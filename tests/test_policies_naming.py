"""policies.naming: room names and topics carry no identity beyond what the naming mode allows."""
from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from policies.naming import (CODE_ALPHABET, DEFAULT_MODE, NamingMode, circle_room_name, initials, pathway_code,
                             room_name,
                             room_topic, space_name)

LABEL = "Insuffisance cardiaque"


def test_modes():
    assert NamingMode("initiales") is NamingMode.INITIALS is DEFAULT_MODE
    assert NamingMode("pseudonyme") is NamingMode.PSEUDONYMOUS


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


def test_names_by_mode():
    kwargs = dict(first_names="Marcel", birth_name="Durand", birth_year=1948, code="P-7K3Q9")
    assert room_name(NamingMode.INITIALS, pathway_label=LABEL, **kwargs) == "M. D. (1948) · Insuffisance cardiaque"
    assert room_name(NamingMode.PSEUDONYMOUS, pathway_label=LABEL, **kwargs) == "P-7K3Q9 · Insuffisance cardiaque"
    assert space_name(NamingMode.INITIALS, **kwargs) == "M. D. (1948)"
    assert space_name(NamingMode.PSEUDONYMOUS, **kwargs) == "Patient P-7K3Q9"


@pytest.mark.parametrize("mode, shown", [
    (NamingMode.INITIALS, "initiales"), (NamingMode.PSEUDONYMOUS, "code du parcours"),
])
def test_room_topic(mode, shown):
    topic = room_topic(mode, LABEL)
    assert topic.startswith("Salon de liaison — parcours Insuffisance cardiaque.")
    for fragment in ("chiffrés", "message épinglé", shown):
        assert fragment in topic


LETTERS = "abcdefghijklmnopqrstuvwxyzéèêëàâçîïôöùûüÿæœ"
NAME = st.text(alphabet=LETTERS + LETTERS.upper(), min_size=3, max_size=20)
COMPOUND = st.lists(NAME, min_size=1, max_size=3).map("-".join)
YEAR = st.integers(min_value=1890, max_value=2025)


@given(first=COMPOUND, last=COMPOUND, year=YEAR, entropy=st.binary(min_size=8, max_size=8))
def test_names_never_carry_a_full_name(first, last, year, entropy):
    code = pathway_code(entropy)
    for mode in NamingMode:
        texts = [room_name(mode, first_names=first, birth_name=last, birth_year=year, pathway_label=LABEL,
                           code=code),
                 space_name(mode, first_names=first, birth_name=last, birth_year=year, code=code),
                 room_topic(mode, LABEL)]
        for text in texts:
            for name in (first, last, *first.split("-"), *last.split("-")):
                assume(name.casefold() not in LABEL.casefold() and name.casefold() not in code.casefold())
                assert name.casefold() not in text.casefold()


@given(first=COMPOUND, last=COMPOUND, year=YEAR, entropy=st.binary(min_size=8, max_size=8))
def test_pseudonymous_mode_shows_no_initials_nor_year(first, last, year, entropy):
    code = pathway_code(entropy)
    kwargs = dict(first_names=first, birth_name=last, birth_year=year, code=code)
    room = room_name(NamingMode.PSEUDONYMOUS, pathway_label=LABEL, **kwargs)
    space = space_name(NamingMode.PSEUDONYMOUS, **kwargs)
    assert room == f"{code} · {LABEL}" and space == f"Patient {code}"
    for text in (room, space):
        assert str(year) not in text and "." not in text
        assert initials(first, last) not in text


@pytest.mark.parametrize("mode", list(NamingMode))
def test_the_circle_room_s_name_carries_no_pathway_type(mode):
    """Non-health members read it, and the homeserver keeps it in clear: the code, and the mode's identity at most."""
    name = circle_room_name(mode, first_names="Marcel", birth_name="Durand", birth_year=1948, code="P-7K3Q9")
    assert "P-7K3Q9" in name and "cercle élargi" in name
    assert LABEL.lower() not in name.lower() and "Durand" not in name and "Marcel" not in name
    assert name == ("P-7K3Q9 · cercle élargi" if mode is NamingMode.PSEUDONYMOUS
                    else "M. D. (1948) · P-7K3Q9 · cercle élargi")
