"""The METADATA.XML that bridge.xdm writes: valid against the ebRIM 3.0 / ebRS 3.0 subset shipped in
tests/fixtures/xds, and following the XDS rules of ITI TF-3 §4.2 that XML Schema 1.0 cannot express.

The write → read_xdm round trip of a PDF, field for field, is tests/test_xdm.py
(test_round_trip_gives_back_every_field); the CDA one here covers what test_cda_round_trip_and_several_documents
leaves out.
"""
from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest
from lxml import etree

from bridge.xdm import XdmAuthor, XdmOut, read_xdm, write_xdm
from bridge.xdm_meta import (
    DOC_CLASS, DOC_CONFIDENTIALITY, DOC_FACILITY, DOC_FORMAT, DOC_PATIENT_ID, DOC_PRACTICE, DOC_TYPE,
    DOC_UNIQUE_ID, HAS_MEMBER, INS_OIDS, LCM_NS, RIM_NS, SS_CLASSIFICATION_NODE, SS_CONTENT_TYPE,
    SS_PATIENT_ID, SS_SOURCE_ID, SS_UNIQUE_ID, STABLE_DOCUMENT,
)
from policies.ins import OID_INS_NIR_TEST

XSD = Path(__file__).parent / "fixtures" / "xds"
SUBSET = "IHE_XDM/SUBSET01"
META = f"{SUBSET}/METADATA.XML"
INS = "279035121518989"
OID = OID_INS_NIR_TEST
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
STAMP = "20260304050607"
AUTHOR = XdmAuthor(name="Dr Camille Lefebvre", given="Camille", family="Lefebvre", rpps="10001234567",
                   institution="Maison de santé de Démo", profession="Médecin généraliste")
NS = {"rim": RIM_NS, "lcm": LCM_NS}
R = f"{{{RIM_NS}}}"


def pdf(title: str = "Lettre de liaison") -> XdmOut:
    return XdmOut(data=b"%PDF-1.4\n% lettre\n%%EOF\n", mime_type="application/pdf", title=title,
                  type_code="11490-0", type_display="Lettre de liaison", filename_ext="pdf")


def cda_bytes() -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'
            f'<code code="11490-0" codeSystem="2.16.840.1.113883.6.1"/>'
            f'<recordTarget><patientRole><id root="{OID}" extension="{INS}"/>'
            f'</patientRole></recordTarget></ClinicalDocument>').encode()


def cda() -> XdmOut:
    return XdmOut(data=cda_bytes(), mime_type="text/xml", title="CR de consultation", type_code="11490-0",
                  type_display="Lettre de liaison", filename_ext="xml")


DOCUMENTS = {"pdf": pdf, "cda": cda}


def package(*docs: XdmOut, author: XdmAuthor = AUTHOR) -> bytes:
    return write_xdm(list(docs), patient_ins=INS, patient_oid=OID, author=author, source_id="1.2.250.1.999.1",
                     now=NOW)


def files_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def parse(metadata: bytes) -> etree._Element:
    return etree.fromstring(metadata, etree.XMLParser(resolve_entities=False, no_network=True))


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD / "lcm.xsd")))


def schema_errors(schema: etree.XMLSchema, root: etree._Element) -> str | None:
    """None when `root` is valid, else lxml's messages."""
    return None if schema.validate(root) else str(schema.error_log)


# --- the XDS rules (ITI TF-3 §4.2) -----------------------------------------------------------------

_DTM_FORMATS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_CX = re.compile(r"^(?P<id>[^^&]+)\^\^\^&(?P<oid>[0-9.]+)&ISO(\^NH)?$")
# Document entry codes: scheme → (name, several allowed).
_ENTRY_CODES = {DOC_CLASS: ("classCode", False), DOC_TYPE: ("typeCode", False), DOC_FORMAT: ("formatCode", False),
                DOC_FACILITY: ("healthcareFacilityTypeCode", False), DOC_PRACTICE: ("practiceSettingCode", False),
                DOC_CONFIDENTIALITY: ("confidentialityCode", True)}


def is_dtm(value: str) -> bool:
    """An HL7 v2 DTM in UTC, YYYY[MM[DD[hh[mm[ss]]]]], that is a real date."""
    if not re.fullmatch(r"[0-9]+", value) or len(value) not in _DTM_FORMATS:
        return False
    try:
        datetime.strptime(value, _DTM_FORMATS[len(value)])
    except ValueError:
        return False
    return True


def _slots(obj: etree._Element) -> dict[str, list[str]]:
    return {slot.get("name"): [v.text or "" for v in slot.iter(f"{R}Value")] for slot in obj.findall(f"{R}Slot")}


def _one_slot(obj: etree._Element, name: str) -> str | None:
    values = _slots(obj).get(name) or []
    return values[0] if len(values) == 1 and values[0] else None


class Rules:
    """Collects what an XDS metadata set breaks, as short sentences naming the attribute."""

    def __init__(self, files: dict[str, bytes], patient_cx: str):
        self.files, self.patient_cx, self.problems = files, patient_cx, []

    def need(self, ok: object, what: str) -> None:
        if not ok:
            self.problems.append(what)

    def common(self, obj: etree._Element, label: str) -> None:
        names = [s.get("name") for s in obj.findall(f"{R}Slot")]
        self.need(len(names) == len(set(names)), f"{label}: slot names repeated")
        for node in obj.findall(f"{R}Classification"):
            self.need(node.get("classifiedObject") == obj.get("id"), f"{label}: classification of another object")
        for ext in obj.findall(f"{R}ExternalIdentifier"):
            self.need(ext.get("registryObject") == obj.get("id"), f"{label}: external identifier of another object")

    def coded(self, obj: etree._Element, scheme: str, name: str, several: bool = False) -> None:
        nodes = [c for c in obj.findall(f"{R}Classification") if c.get("classificationScheme") == scheme]
        self.need(nodes if several else len(nodes) == 1, f"{name}: expected {'one or more' if several else 'one'}")
        for node in nodes:
            self.need(node.get("nodeRepresentation"), f"{name}: no code (nodeRepresentation)")
            self.need(_one_slot(node, "codingScheme"), f"{name}: no codingScheme slot")
            self.need(node.find(f"{R}Name/{R}LocalizedString") is not None, f"{name}: no display name")

    def ident(self, obj: etree._Element, scheme: str, name: str) -> str | None:
        found = [e.get("value") for e in obj.findall(f"{R}ExternalIdentifier")
                 if e.get("identificationScheme") == scheme]
        self.need(len(found) == 1, f"{name}: expected one external identifier")
        return found[0] if len(found) == 1 else None

    def oid(self, value: str | None, name: str) -> None:
        self.need(value and _OID.match(value) and len(value) <= 64, f"{name}: not an OID of at most 64 characters")

    def submission_set(self, package: etree._Element) -> None:
        self.common(package, "SubmissionSet")
        self.need(is_dtm(_one_slot(package, "submissionTime") or ""), "submissionTime: not a DTM")
        self.coded(package, SS_CONTENT_TYPE, "contentTypeCode")
        self.oid(self.ident(package, SS_UNIQUE_ID, "XDSSubmissionSet.uniqueId"), "XDSSubmissionSet.uniqueId")
        self.oid(self.ident(package, SS_SOURCE_ID, "XDSSubmissionSet.sourceId"), "XDSSubmissionSet.sourceId")
        self.need(self.ident(package, SS_PATIENT_ID, "XDSSubmissionSet.patientId") == self.patient_cx,
                  "XDSSubmissionSet.patientId: not the patient's INS")

    def document_entry(self, entry: etree._Element) -> None:
        self.common(entry, "DocumentEntry")
        self.need(entry.get("objectType") == STABLE_DOCUMENT, "DocumentEntry: objectType is not a stable entry")
        self.need(entry.get("mimeType"), "DocumentEntry: no mimeType")
        for scheme, (name, several) in _ENTRY_CODES.items():
            self.coded(entry, scheme, name, several)
        self.need(self.ident(entry, DOC_PATIENT_ID, "XDSDocumentEntry.patientId") == self.patient_cx,
                  "XDSDocumentEntry.patientId: not the patient's INS")
        self.oid(self.ident(entry, DOC_UNIQUE_ID, "XDSDocumentEntry.uniqueId"), "XDSDocumentEntry.uniqueId")
        self.need(is_dtm(_one_slot(entry, "creationTime") or ""), "creationTime: not a DTM")
        self.need(_one_slot(entry, "languageCode"), "languageCode: missing")
        self.need(_CX.match(_one_slot(entry, "sourcePatientId") or ""), "sourcePatientId: not a CX")
        uri = _one_slot(entry, "URI")
        data = self.files.get(f"{SUBSET}/{uri}") if uri else None
        self.need(data is not None, "URI: names no file of the subset")
        if data is not None:
            self.need(_one_slot(entry, "hash") == hashlib.sha1(data).hexdigest(), "hash: not the file's SHA-1")
            self.need(_one_slot(entry, "size") == str(len(data)), "size: not the file's length")


def xds_problems(metadata: bytes, files: dict[str, bytes], *, ins: str, oid: str) -> list[str]:
    """What METADATA.XML breaks among the XDS rules that its schema cannot check ([] when none)."""
    root = parse(metadata)
    rules = Rules(files, f"{ins}^^^&{oid}&ISO^NH")
    ids = [e.get("id") for e in root.iter(f"{R}*") if e.get("id") is not None]
    rules.need(len(ids) == len(set(ids)), "ids are not unique")
    objects = root.find(f"{R}RegistryObjectList")
    if objects is None:
        return ["no RegistryObjectList"]
    marked = {c.get("classifiedObject") for c in objects.findall(f"{R}Classification")
              if c.get("classificationNode") == SS_CLASSIFICATION_NODE}
    packages = [p for p in objects.findall(f"{R}RegistryPackage") if p.get("id") in marked]
    entries = objects.findall(f"{R}ExtrinsicObject")
    rules.need(len(packages) == 1, "SubmissionSet: expected one RegistryPackage classified as such")
    rules.need(entries, "DocumentEntry: none")
    for package in packages:
        rules.submission_set(package)
    for entry in entries:
        rules.document_entry(entry)
    set_id = packages[0].get("id") if packages else None
    for entry in entries:
        links = [a for a in objects.findall(f"{R}Association") if a.get("associationType") == HAS_MEMBER
                 and a.get("sourceObject") == set_id and a.get("targetObject") == entry.get("id")]
        rules.need(len(links) == 1 and _slots(links[0]).get("SubmissionSetStatus") == ["Original"],
                   "HasMember: expected one from the SubmissionSet, SubmissionSetStatus Original")
    return rules.problems


# --- the package written by Liaison is valid -------------------------------------------------------

@pytest.mark.parametrize("kind", ["pdf", "cda"])
def test_metadata_is_valid_and_follows_the_xds_rules(schema, kind):
    assert OID in INS_OIDS
    files = files_of(package(DOCUMENTS[kind]()))
    root = parse(files[META])
    assert root.tag == f"{{{LCM_NS}}}SubmitObjectsRequest"
    assert schema_errors(schema, root) is None
    assert xds_problems(files[META], files, ins=INS, oid=OID) == []
    cx = f"{INS}^^^&{OID}&ISO^NH"
    assert [e.get("value") for e in root.iterfind(".//rim:ExternalIdentifier", NS)
            if e.get("identificationScheme") in (DOC_PATIENT_ID, SS_PATIENT_ID)] == [cx, cx]
    stamps = root.xpath(".//rim:Slot[@name='creationTime' or @name='submissionTime']/rim:ValueList/rim:Value/text()",
                        namespaces=NS)
    assert stamps == [STAMP, STAMP]


def test_cda_record_target_carries_the_same_ins():
    files = files_of(package(cda()))
    ids = parse(files[f"{SUBSET}/DOC0001.XML"]).xpath("//h:recordTarget/h:patientRole/h:id",
                                                     namespaces={"h": "urn:hl7-org:v3"})
    assert [(i.get("root"), i.get("extension")) for i in ids] == [(OID, INS)]


def test_several_documents_each_have_their_entry_and_association(schema):
    files = files_of(package(pdf(), cda(), pdf("Annexe")))
    root = parse(files[META])
    assert schema_errors(schema, root) is None
    assert xds_problems(files[META], files, ins=INS, oid=OID) == []
    assert len(root.findall(".//rim:ExtrinsicObject", NS)) == len(root.findall(".//rim:Association", NS)) == 3


def test_long_free_text_is_cut_to_the_ebrim_lengths(schema):
    long_author = XdmAuthor(name="Pr " + "Ă" * 90 + " " + "^" * 90, given="Ă" * 90, family="^" * 90,
                            rpps="10001234567", institution="&" * 300, profession="P" * 300)
    doc = XdmOut(data=b"%PDF-1.4\n", mime_type="application/pdf", title="T" * 2000, type_code="11490-0",
                 type_display="D" * 1500, filename_ext="pdf")
    data = package(doc, author=long_author)
    files = files_of(data)
    assert schema_errors(schema, parse(files[META])) is None
    assert xds_problems(files[META], files, ins=INS, oid=OID) == []
    entry = read_xdm(data).documents[0]
    assert entry.title == "T" * 1024 and entry.type_display == "D" * 1024
    assert entry.author and entry.author.startswith("Pr " + "Ă" * 64)


@pytest.mark.parametrize("rpps", ["1" * 33, "1000^1234567", "10001234567&x"])
def test_an_rpps_that_cannot_be_an_xcn_id_is_refused(rpps):
    author = XdmAuthor(name="Dr A B", given="A", family="B", rpps=rpps, institution="MSP")
    with pytest.raises(ValueError):
        package(pdf(), author=author)


# --- the schema is not vacuous ---------------------------------------------------------------------

def _first(root, path: str):
    return root.xpath(path, namespaces=NS)[0]


def _move_after(root, path: str, anchor: str) -> None:
    node, after = _first(root, path), _first(root, anchor)
    node.getparent().remove(node)
    after.addnext(node)


def _drop(path: str, attribute: str) -> Callable:
    return lambda root: _first(root, path).attrib.pop(attribute)


def _add(path: str, tag: str, **attributes: str) -> Callable:
    return lambda root: etree.SubElement(_first(root, path), tag, attributes)


def _remove(path: str) -> Callable:
    def remove(root):
        node = _first(root, path)
        node.getparent().remove(node)
    return remove


def _set_text(path: str, text: str) -> Callable:
    def set_text(root):
        _first(root, path).text = text
    return set_text


def _set(path: str, attribute: str, value: str) -> Callable:
    return lambda root: _first(root, path).set(attribute, value)


ENTRY = "//rim:ExtrinsicObject"
INVALID = {
    "Slot without name": _drop("//rim:Slot", "name"),
    "Slot without ValueList": _remove("//rim:Slot/rim:ValueList"),
    "Value over 256 characters": _set_text("//rim:Value", "x" * 257),
    "ExternalIdentifier without value": _drop("//rim:ExternalIdentifier", "value"),
    "ExternalIdentifier without identificationScheme": _drop("//rim:ExternalIdentifier", "identificationScheme"),
    "ExternalIdentifier without registryObject": _drop("//rim:ExternalIdentifier", "registryObject"),
    "Classification without classifiedObject": _drop(f"{ENTRY}/rim:Classification", "classifiedObject"),
    "nodeRepresentation over 256 characters": _set(f"{ENTRY}/rim:Classification", "nodeRepresentation", "c" * 257),
    "Association without associationType": _drop("//rim:Association", "associationType"),
    "Association without sourceObject": _drop("//rim:Association", "sourceObject"),
    "Association without targetObject": _drop("//rim:Association", "targetObject"),
    "ExtrinsicObject without id": _drop(ENTRY, "id"),
    "LocalizedString without value": _drop("//rim:LocalizedString", "value"),
    "LocalizedString value over 1024 characters": _set("//rim:LocalizedString", "value", "v" * 1025),
    "isOpaque not a boolean": _set(ENTRY, "isOpaque", "perhaps"),
    "Name after Classification": lambda root: _move_after(root, f"{ENTRY}/rim:Name",
                                                          f"{ENTRY}/rim:Classification[last()]"),
    "Slot after Name": lambda root: _move_after(root, f"{ENTRY}/rim:Slot[1]", f"{ENTRY}/rim:Name"),
    "ExternalIdentifier before Classification": lambda root: _move_after(
        root, f"{ENTRY}/rim:ExternalIdentifier[1]", f"{ENTRY}/rim:Classification[1]"),
    "two Names": lambda root: _first(root, f"{ENTRY}/rim:Name").addnext(etree.Element(f"{R}Name")),
    "unknown element in RegistryObjectList": _add("//rim:RegistryObjectList", f"{R}Document", id="urn:uuid:x"),
    "lcm element in RegistryObjectList": _add("//rim:RegistryObjectList", f"{{{LCM_NS}}}ExtrinsicObject",
                                              id="urn:uuid:x"),
    "text in a ValueList": _set_text("//rim:ValueList", "loose text"),
    "no RegistryObjectList": _remove("//rim:RegistryObjectList"),
}


@pytest.fixture(scope="module")
def written() -> dict[str, bytes]:
    """The files of one PDF package, shared by the mutation tests (each parses its own copy)."""
    return files_of(package(pdf()))


@pytest.mark.parametrize("mutation", list(INVALID), ids=list(INVALID))
def test_schema_refuses_an_invalid_mutation(schema, written, mutation):
    root = parse(written[META])
    assert schema_errors(schema, root) is None
    INVALID[mutation](root)
    assert schema_errors(schema, root) is not None, mutation


def test_schema_refuses_a_root_in_the_wrong_namespace(schema, written):
    root = parse(written[META])
    root.tag = f"{R}SubmitObjectsRequest"
    assert schema_errors(schema, root) is not None


def test_schema_accepts_what_ebrim_allows(schema, written):
    """Not stricter than ebRIM: an ObjectRef, a Description, a VersionInfo, no mimeType (it has a default)."""
    root = parse(written[META])
    etree.SubElement(_first(root, "//rim:RegistryObjectList"), f"{R}ObjectRef", id="urn:uuid:0e4b53b4-8e4b")
    name = _first(root, f"{ENTRY}/rim:Name")
    description = etree.Element(f"{R}Description")
    etree.SubElement(description, f"{R}LocalizedString", value="Courrier au confrère")
    name.addnext(description)
    description.addnext(etree.Element(f"{R}VersionInfo", versionName="1.1"))
    _first(root, ENTRY).attrib.pop("mimeType")
    assert schema_errors(schema, root) is None


# --- the XDS rules are not vacuous either ----------------------------------------------------------

BROKEN = {
    "classCode": _remove(f"{ENTRY}/rim:Classification[@classificationScheme='{DOC_CLASS}']"),
    "formatCode": _drop(f"{ENTRY}/rim:Classification[@classificationScheme='{DOC_FORMAT}']",
                        "nodeRepresentation"),
    "contentTypeCode": _remove(f"//rim:RegistryPackage/rim:Classification"
                               f"[@classificationScheme='{SS_CONTENT_TYPE}']/rim:Slot[@name='codingScheme']"),
    "XDSDocumentEntry.uniqueId": _remove(f"{ENTRY}/rim:ExternalIdentifier[@identificationScheme='{DOC_UNIQUE_ID}']"),
    "XDSSubmissionSet.patientId": _set(f"//rim:ExternalIdentifier[@identificationScheme='{SS_PATIENT_ID}']",
                                       "value", f"185057800608436^^^&{OID}&ISO^NH"),
    "XDSSubmissionSet.sourceId": _set(f"//rim:ExternalIdentifier[@identificationScheme='{SS_SOURCE_ID}']",
                                      "value", "not-an-oid"),
    "hash": _set_text(f"{ENTRY}/rim:Slot[@name='hash']/rim:ValueList/rim:Value", "0" * 40),
    "size": _set_text(f"{ENTRY}/rim:Slot[@name='size']/rim:ValueList/rim:Value", "1"),
    "URI": _set_text(f"{ENTRY}/rim:Slot[@name='URI']/rim:ValueList/rim:Value", "DOC0009.PDF"),
    "creationTime": _set_text(f"{ENTRY}/rim:Slot[@name='creationTime']/rim:ValueList/rim:Value", "20261304050607"),
    "submissionTime": _set_text("//rim:Slot[@name='submissionTime']/rim:ValueList/rim:Value", "2026-03-04"),
    "SubmissionSet": _set(f"//rim:Classification[@classificationNode='{SS_CLASSIFICATION_NODE}']",
                          "classifiedObject", "urn:uuid:elsewhere"),
    "HasMember": _remove("//rim:Association/rim:Slot[@name='SubmissionSetStatus']"),
    "objectType": _set(ENTRY, "objectType", "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"),
    "classification of another object": _set(f"{ENTRY}/rim:Classification", "classifiedObject", "urn:uuid:other"),
    "ids are not unique": lambda root: _first(root, ENTRY).set("id", _first(root, "//rim:Association").get("id")),
}


@pytest.mark.parametrize("rule", list(BROKEN), ids=list(BROKEN))
def test_xds_rules_catch_what_the_schema_lets_through(schema, written, rule):
    root = parse(written[META])
    BROKEN[rule](root)
    assert schema_errors(schema, root) is None  # still valid ebRIM: only the XDS rules can tell
    problems = xds_problems(etree.tostring(root), written, ins=INS, oid=OID)
    assert any(rule in problem for problem in problems), problems


# --- round trip of a CDA (the PDF one is in tests/test_xdm.py) -------------------------------------

def test_cda_round_trip_gives_back_every_field():
    doc = cda()
    (entry,) = read_xdm(package(doc)).documents
    assert (entry.title, entry.mime_type, entry.data, entry.uri) == (doc.title, "text/xml", doc.data, "DOC0001.XML")
    assert (entry.type_code, entry.type_scheme, entry.type_display) == (
        doc.type_code, doc.type_scheme, doc.type_display)
    assert (entry.patient_ins, entry.patient_oid, entry.source_patient_ins) == (INS, OID, INS)
    assert (entry.author, entry.author_institution) == (AUTHOR.name, AUTHOR.institution)
    assert (entry.hash_sha1, entry.size) == (hashlib.sha1(doc.data).hexdigest(), len(doc.data))
    assert entry.creation_time == STAMP
    assert (entry.cda_code, entry.cda_patient_ins) == ("11490-0", INS)
