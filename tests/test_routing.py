"""Which pathway a mail goes to, or why it waits in quarantine: pure, over what the caller looked up."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from bridge.routing import Lookup, PathwayRef, Quarantine, Route, route, subaddress_code

BRIDGE = "liaison@msp.mssante.fr"

DIABETE = PathwayRef("pw-d", "P-DIAB1", "patient-a", "!d:hs", True)
PLAIES = PathwayRef("pw-p", "P-PLAI2", "patient-a", "!p:hs", True)
CLOSED = PathwayRef("pw-c", "P-CLOS3", "patient-a", "!c:hs", False)
OTHER = PathwayRef("pw-o", "P-OTHR4", "patient-b", "!o:hs", True)


def _routed(result, pathway: PathwayRef, thread_root: str | None = None) -> Route:
    assert isinstance(result, Route), result
    assert result.pathway == pathway and result.thread_root == thread_root
    assert result.how
    return result


CASES = [
    # (name, lookup, expected pathway or quarantine code, thread root)
    ("thread known and open", Lookup(trusted=True, thread=(DIABETE, "$root")), DIABETE, "$root"),
    ("thread known, XDM of the same patient", Lookup(trusted=True, thread=(DIABETE, "$root"), xdm_patient="patient-a",
                                                      patient_pathways=(PLAIES, DIABETE)), DIABETE, "$root"),
    ("thread known, XDM INS of another patient",
     Lookup(trusted=True, thread=(DIABETE, "$root"), xdm_patient="patient-b", patient_pathways=(OTHER,)),
     "ins_mismatch", None),
    ("thread and sub-address naming two pathways", (  # #13: the thread no longer beats an explicit sub-address
        Lookup(trusted=True, thread=(CLOSED, "$root"), subaddress_code="P-PLAI2", subaddress_pathway=PLAIES)),
     "thread_conflict", None),
    ("thread and the same pathway's sub-address",
     Lookup(trusted=True, thread=(DIABETE, "$root"), subaddress_code="P-DIAB1", subaddress_pathway=DIABETE),
     DIABETE, "$root"),
    ("thread and an unknown sub-address", Lookup(trusted=True, thread=(DIABETE, "$root"), subaddress_code="P-NONE0"),
     "thread_conflict", None),
    ("a thread it is not a party of: routed as a new mail", Lookup(
        trusted=True, foreign_thread=True, subaddress_code="P-PLAI2", subaddress_pathway=PLAIES), PLAIES, None),
    ("thread of a closed pathway and nothing else",
     Lookup(trusted=True, thread=(CLOSED, "$root")), "unroutable", None),
    ("XDM INS with one open pathway", Lookup(trusted=True, xdm_patient="patient-a", patient_pathways=(DIABETE,)),
     DIABETE, None),
    ("XDM INS with several pathways: the most recent",
     Lookup(trusted=True, xdm_patient="patient-a", patient_pathways=(PLAIES, DIABETE)), PLAIES, None),
    ("sub-address naming one of the patient's pathways wins",
     Lookup(trusted=True, xdm_patient="patient-a", patient_pathways=(PLAIES, DIABETE), subaddress_code="P-DIAB1",
            subaddress_pathway=DIABETE), DIABETE, None),
    ("sub-address of another patient's pathway",
     Lookup(trusted=True, xdm_patient="patient-a", patient_pathways=(DIABETE,), subaddress_code="P-OTHR4",
            subaddress_pathway=OTHER), "ins_mismatch", None),
    ("sub-address of the patient's closed pathway: the open one",
     Lookup(trusted=True, xdm_patient="patient-a", patient_pathways=(DIABETE,), subaddress_code="P-CLOS3",
            subaddress_pathway=CLOSED), DIABETE, None),
    ("INS unknown", Lookup(trusted=True, xdm_ins_unknown=True), "unknown_patient", None),
    ("a test identity outside test mode", Lookup(trusted=True, xdm_test_identity=True), "test_identity", None),
    ("a test identity beats a known thread",
     Lookup(trusted=True, xdm_test_identity=True, thread=(DIABETE, "$root")), "test_identity", None),
    ("INS unknown beats a known thread", Lookup(trusted=True, xdm_ins_unknown=True, thread=(DIABETE, "$root")),
     "unknown_patient", None),
    ("patient without pathway", Lookup(trusted=True, xdm_patient="patient-a"), "no_pathway", None),
    ("sub-address only", Lookup(trusted=True, subaddress_code="P-DIAB1", subaddress_pathway=DIABETE), DIABETE, None),
    ("unknown sub-address code", Lookup(trusted=True, subaddress_code="P-ZZZZZ"), "unknown_pathway", None),
    ("sub-address of a closed pathway", Lookup(trusted=True, subaddress_code="P-CLOS3", subaddress_pathway=CLOSED),
     "unknown_pathway", None),
    ("nothing", Lookup(trusted=True), "unroutable", None),
    ("untrusted, nothing", Lookup(trusted=False), "untrusted", None),
    ("untrusted, thread known", Lookup(trusted=False, thread=(DIABETE, "$root")), "untrusted", None),
    ("untrusted, XDM and sub-address",
     Lookup(trusted=False, xdm_patient="patient-a", patient_pathways=(DIABETE,), subaddress_code="P-DIAB1",
            subaddress_pathway=DIABETE), "untrusted", None),
    ("untrusted, INS unknown", Lookup(trusted=False, xdm_ins_unknown=True), "untrusted", None),
]


@pytest.mark.parametrize(("lookup", "expected", "root"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_route(lookup, expected, root):
    result = route(lookup)
    if isinstance(expected, str):
        assert isinstance(result, Quarantine), result
        assert result.code == expected and result.reason
    else:
        _routed(result, expected, root)


def test_a_single_pathway_carries_no_note():
    assert _routed(route(Lookup(trusted=True, xdm_patient="patient-a", patient_pathways=(DIABETE,))), DIABETE).note == ""


def test_several_pathways_leave_a_note_naming_the_codes():
    third = PathwayRef("pw-3", "P-THRD5", "patient-a", "!3:hs", True)
    r = _routed(route(Lookup(trusted=True, xdm_patient="patient-a", patient_pathways=(PLAIES, DIABETE, third))), PLAIES)
    assert all(code in r.note for code in ("P-PLAI2", "P-DIAB1", "P-THRD5"))
    assert "liaison+P-PLAI2@" in r.note


def test_the_unknown_code_is_named_in_the_reason():
    q = route(Lookup(trusted=True, subaddress_code="P-ZZZZZ"))
    assert isinstance(q, Quarantine) and "P-ZZZZZ" in q.reason


@pytest.mark.parametrize(("recipients", "code"), [
    (("liaison+p-7k3q9@msp.mssante.fr",), "P-7K3Q9"),
    (("Liaison+P-7K3Q9@MSP.MSSante.FR",), "P-7K3Q9"),
    (("dr@ext.mssante.fr", "liaison+P-7K3Q9@msp.mssante.fr"), "P-7K3Q9"),
    (("liaison@msp.mssante.fr",), None),
    (("liaison+@msp.mssante.fr",), None),
    (("liaison+P-7K3Q9@other.mssante.fr",), None),
    (("liaison+P-7K3Q9@sub.msp.mssante.fr",), None),
    (("liaisons+P-7K3Q9@msp.mssante.fr",), None),
    (("autre+P-7K3Q9@msp.mssante.fr",), None),
    (("not an address",), None),
    ((), None),
])
def test_subaddress_code(recipients, code):
    assert subaddress_code(recipients, BRIDGE) == code


def test_subaddress_code_with_a_mixed_case_bridge_address():
    assert subaddress_code(("liaison+p-1@msp.mssante.fr",), "Liaison@MSP.mssante.fr") == "P-1"


# -- properties -------------------------------------------------------------

PATIENTS = st.sampled_from(["patient-a", "patient-b", "patient-c"])


@st.composite
def pathways(draw, patient=None, open_=None):
    code = draw(st.sampled_from(["P-AAAA1", "P-BBBB2", "P-CCCC3", "P-DDDD4"]))
    return PathwayRef(f"pw-{code}", code, patient or draw(PATIENTS), f"!{code}:hs",
                      draw(st.booleans()) if open_ is None else open_)


@st.composite
def lookups(draw):
    """Lookups as the inbound side builds them: a patient's pathways are its open ones, an unknown
    INS has no patient, a sub-address pathway comes with its code."""
    ins = draw(st.sampled_from(["none", "unknown", "known"]))
    patient = draw(PATIENTS) if ins == "known" else None
    mine = tuple(draw(st.lists(pathways(patient=patient, open_=True), max_size=3))) if patient else ()
    sub = draw(st.none() | pathways())
    code = sub.code if sub else draw(st.none() | st.sampled_from(["P-ZZZZ9", "P-AAAA1"]))
    thread = draw(st.none() | st.tuples(pathways(), st.sampled_from(["$root1", "$root2"])))
    return Lookup(trusted=draw(st.booleans()), thread=thread, xdm_patient=patient, xdm_ins_unknown=ins == "unknown",
                  patient_pathways=mine, subaddress_code=code, subaddress_pathway=sub)


@settings(max_examples=400)
@given(lookups())
def test_route_properties(x):
    result = route(x)
    assert isinstance(result, (Route, Quarantine))
    if not x.trusted:
        assert isinstance(result, Quarantine) and result.code == "untrusted"
    if isinstance(result, Route):
        assert result.pathway.open, "never a closed pathway"
        if x.xdm_patient:
            assert result.pathway.patient_id == x.xdm_patient, "the patient named by the document's INS"
        candidates = {p for p in (x.thread[0] if x.thread else None, x.subaddress_pathway, *x.patient_pathways) if p}
        assert result.pathway in candidates, "only a pathway the caller found"
        if result.thread_root is not None:
            assert x.thread is not None and (result.pathway, result.thread_root) == x.thread
    else:
        assert result.code and result.reason


@given(st.builds(Lookup, trusted=st.booleans(), thread=st.none() | st.tuples(pathways(), st.text(max_size=5)),
                 xdm_patient=st.none() | PATIENTS, xdm_ins_unknown=st.booleans(), xdm_test_identity=st.booleans(),
                 patient_pathways=st.lists(pathways(), max_size=3).map(tuple),
                 subaddress_code=st.none() | st.text(max_size=8), subaddress_pathway=st.none() | pathways()))
def test_route_never_raises_on_any_lookup(x):
    result = route(x)
    assert isinstance(result, (Route, Quarantine))
    if not x.trusted:
        assert isinstance(result, Quarantine) and result.code == "untrusted"
    elif x.xdm_test_identity:
        assert isinstance(result, Quarantine) and result.code == "test_identity", "never a real patient's room"


@given(st.lists(st.text(max_size=30), max_size=4).map(tuple))
def test_subaddress_code_never_raises(recipients):
    code = subaddress_code(recipients, BRIDGE)
    assert code is None or (code and code == code.upper())
