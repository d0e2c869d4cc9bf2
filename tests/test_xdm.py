"""IHE XDM packages: round trip, and every unsafe or inconsistent archive refused with its code."""
from __future__ import annotations

import functools
import hashlib
import io
import re
import zipfile
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bridge.xdm
from bridge.xdm import XdmAuthor, XdmError, XdmLimits, XdmOut, mss_headers, read_xdm, write_xdm
from bridge.xdm_meta import CDA_HEADER_ELEMENTS, cda_info
from tests.support.hostile import cda_bomb, metadata_bomb
from tests.support.mss import xdm_full

INS = "279035121518989"
OTHER_INS = "185057800608436"
OID = "1.2.250.1.213.1.4.10"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
META = "IHE_XDM/SUBSET01/METADATA.XML"
AUTHOR = XdmAuthor(name="Dr Camille Lefebvre", given="Camille", family="Lefebvre", rpps="10001234567",
                   institution="CHU de Démo", profession="Cardiologue")


def pdf(data: bytes = b"%PDF-1.4\n% lettre\n", title: str = "Lettre de liaison") -> XdmOut:
    return XdmOut(data=data, mime_type="application/pdf", title=title, type_code="11490-0",
                  type_display="Lettre de liaison à la sortie d'un établissement de soins", filename_ext="pdf")


def cda_bytes(ins: str = INS, code: str = "11490-0") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'
            f'<code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>'
            f'<recordTarget><patientRole><id root="1.2.250.1.213.1.4.10" extension="{ins}"/>'
            f'<id root="1.2.3.4" extension="IPP42"/></patientRole></recordTarget></ClinicalDocument>').encode()


def cda(ins: str = INS) -> XdmOut:
    return XdmOut(data=cda_bytes(ins), mime_type="text/xml", title="CR de sortie", type_code="11490-0",
                  type_display="Lettre de liaison", filename_ext="xml")


def package(*docs: XdmOut) -> bytes:
    return write_xdm(list(docs or [pdf()]), patient_ins=INS, patient_oid=OID, author=AUTHOR,
                     source_id="1.2.250.1.999.1", now=NOW)


def files_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def zip_of(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), content, compress_type=method)
    return out.getvalue()


def repack(data: bytes, meta=lambda m: m, docs: dict[str, bytes] | None = None) -> bytes:
    """The same package with its METADATA.XML transformed and some documents replaced."""
    files = files_of(data)
    files[META] = meta(files[META].decode()).encode()
    for name, content in (docs or {}).items():
        files[f"IHE_XDM/SUBSET01/{name}"] = content
    return zip_of(files)


def refused(data: bytes, code: str, limits: XdmLimits = XdmLimits()) -> XdmError:
    with pytest.raises(XdmError) as caught:
        read_xdm(data, limits)
    assert caught.value.code == code, caught.value.reason
    assert caught.value.reason and caught.value.reason[0].isupper()
    return caught.value


# --- round trip ----------------------------------------------------------------------------------

def test_round_trip_gives_back_every_field():
    doc = pdf()
    read = read_xdm(package(doc))
    assert read.source_id == "1.2.250.1.999.1" and read.submission_set_id.startswith("2.25.")
    (entry,) = read.documents
    assert (entry.title, entry.mime_type, entry.data) == (doc.title, "application/pdf", doc.data)
    assert (entry.type_code, entry.type_scheme, entry.type_display) == (
        "11490-0", "2.16.840.1.113883.6.1", "Lettre de liaison à la sortie d'un établissement de soins")
    assert (entry.patient_ins, entry.patient_oid, entry.source_patient_ins) == (INS, OID, INS)
    assert entry.author == "Dr Camille Lefebvre" and entry.author_institution == "CHU de Démo"
    assert entry.creation_time == "20260304050607"
    assert entry.hash_sha1 == hashlib.sha1(doc.data).hexdigest() and entry.size == len(doc.data)
    assert entry.uri == "DOC0001.PDF" and entry.entry_uuid.startswith("urn:uuid:")
    assert entry.unique_id.startswith("2.25.") and entry.class_code and entry.format_code
    assert entry.cda_code is None and entry.cda_patient_ins is None


def test_package_layout_and_metadata_vocabulary():
    files = files_of(package(pdf()))
    assert {"INDEX.HTM", "README.TXT", META, "IHE_XDM/SUBSET01/DOC0001.PDF"} == set(files)
    assert "Émetteur" in files["README.TXT"].decode() and 'lang="fr"' in files["INDEX.HTM"].decode()
    meta = files[META].decode()
    for needle in ("lcm:SubmitObjectsRequest", "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",
                   "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1", "AssociationType:HasMember",
                   f"{INS}^^^&amp;{OID}&amp;ISO^NH", 'name="languageCode"', "<rim:Value>fr-FR</rim:Value>",
                   'nodeRepresentation="N"', "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
                   "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", 'name="submissionTime"',
                   "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832",
                   "810001234567^Lefebvre^Camille^^^Dr"):
        assert needle in meta, needle


def test_cda_round_trip_and_several_documents():
    read = read_xdm(package(cda(), pdf(b"%PDF-1.7 annexe", "Annexe")))
    first, second = read.documents
    assert (first.cda_code, first.cda_patient_ins, first.uri) == ("11490-0", INS, "DOC0001.XML")
    assert (second.title, second.uri, second.data) == ("Annexe", "DOC0002.PDF", b"%PDF-1.7 annexe")


@settings(max_examples=40, deadline=None)
@given(title=st.text(min_size=1, max_size=60).filter(lambda t: t.strip()))
def test_titles_round_trip(title):
    expected = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", title)
    assert read_xdm(package(pdf(title=title))).documents[0].title == expected


# --- X-MSS-* headers -------------------------------------------------------------------------------

def test_mss_headers_pdf_gets_none():
    assert mss_headers(read_xdm(package(pdf()))) == {}
    assert mss_headers([pdf()]) == {}


def test_mss_headers_cda_with_ins():
    expected = {"X-MSS-INS": "O", "X-MSS-CODECDA": "11490-0"}
    assert mss_headers(read_xdm(package(cda(), pdf()))) == expected
    assert mss_headers([cda(), pdf()]) == expected
    other = XdmOut(data=cda_bytes(code="34133-9"), mime_type="text/xml", title="VSM", type_code="34133-9",
                   type_display="Synthèse", filename_ext="xml")
    assert mss_headers([cda(), other])["X-MSS-CODECDA"] == "11490-0,34133-9"


def test_mss_headers_cda_without_ins_gets_only_the_code():
    data = cda_bytes().replace(b"1.2.250.1.213.1.4.10", b"1.2.3.4.5")
    doc = XdmOut(data=data, mime_type="text/xml", title="CR", type_code="11490-0", type_display="CR",
                 filename_ext="xml")
    assert mss_headers([doc]) == {"X-MSS-CODECDA": "11490-0"}


# --- refusals --------------------------------------------------------------------------------------

def test_hash_mismatch():
    original = pdf().data
    tampered = original[:-2] + b"X\n"
    assert len(tampered) == len(original)
    refused(repack(package(), docs={"DOC0001.PDF": tampered}), "hash_mismatch")


def test_size_mismatch():
    size = len(pdf().data)
    data = repack(package(), meta=lambda m: m.replace(f"<rim:Value>{size}</rim:Value>",
                                                      f"<rim:Value>{size + 1}</rim:Value>"))
    refused(data, "size_mismatch")


def test_missing_document():
    refused(repack(package(), meta=lambda m: m.replace("DOC0001.PDF", "DOC0009.PDF")), "missing_document")
    refused(repack(package(), meta=lambda m: m.replace("DOC0001.PDF", "../INDEX.HTM")), "missing_document")


def test_zip_bomb_refused_before_any_decompression(monkeypatch):
    bomb = zip_of({"IHE_XDM/SUBSET01/METADATA.XML": b"\0" * (2 * 1024 * 1024)})
    assert len(bomb) < 10_000  # a small zip declaring a ratio of about 1000

    def no_decompression(*args, **kwargs):
        raise AssertionError("decompressed before the checks")
    monkeypatch.setattr(zipfile.ZipFile, "open", no_decompression)
    refused(bomb, "zip_bomb")


def test_a_metadata_too_big_is_refused_by_its_declared_size_before_any_decompression(monkeypatch):
    bomb = metadata_bomb(50 * 1024 * 1024)   # 13 million elements, within the archive's total and ratio limits
    assert len(bomb) < 2 * 1024 * 1024

    def no_decompression(*args, **kwargs):
        raise AssertionError("decompressed before the checks")
    monkeypatch.setattr(zipfile.ZipFile, "open", no_decompression)
    assert "(50 Mo, au-delà de 2 Mo)" in refused(bomb, "metadata_too_big").reason


def test_a_metadata_of_too_many_tags_is_refused_before_it_is_parsed(monkeypatch):
    def no_tree(*args, **kwargs):
        raise AssertionError("parsed before the checks")
    monkeypatch.setattr(bridge.xdm, "parse_xml", no_tree)
    many = repack(package(), meta=lambda m: m.replace("</rim:RegistryObjectList>",
                                                      "<a/>" * 50_000 + "</rim:RegistryObjectList>"))
    assert "balises (50 2" in refused(many, "metadata_too_big").reason
    assert len(files_of(many)[META]) < 1024 * 1024, "small in bytes: the tags are what it is refused for"


def test_an_archive_as_big_as_allowed_is_read():
    data = xdm_full()
    assert len(files_of(data)) == XdmLimits().max_entries
    package = read_xdm(data)
    assert len(package.documents) == 47 and sum(len(d.data) for d in package.documents) > 49 * 1024 * 1024


def test_declared_total_over_the_limit():
    refused(package(), "zip_bomb", XdmLimits(max_total_bytes=1000))


def test_declared_size_that_lies_is_caught_while_reading():
    data = bytearray(zip_of({"README.TXT": b"A" * 5000}, zipfile.ZIP_STORED))
    # Shrink the declared uncompressed size in the local header and the central directory.
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(header)
        data[at + offset:at + offset + 4] = (100).to_bytes(4, "little")
    with pytest.raises(XdmError) as caught:
        read_xdm(bytes(data))
    assert caught.value.code in {"bad_zip", "zip_bomb"}


def test_too_many_entries():
    refused(zip_of({f"f{i}.txt": b"x" for i in range(51)}), "too_many_entries")


@pytest.mark.parametrize("name", ["../evil.txt", "IHE_XDM/../../evil", "/etc/passwd", "C:/evil.txt",
                                  "IHE_XDM\\SUBSET01\\METADATA.XML", "a/./b"])
def test_unsafe_paths(name):
    files = files_of(package())
    files[name] = b"x"
    refused(zip_of(files), "unsafe_path")


def test_nested_archive_by_name_and_by_magic():
    files = files_of(package())
    refused(zip_of({**files, "IHE_XDM/SUBSET01/inner.zip": b"hello"}), "nested_archive")
    refused(repack(package(), docs={"DOC0001.PDF": zip_of({"a.txt": b"a"})}), "nested_archive")


def test_not_a_zip():
    refused(b"%PDF-1.4 not a zip", "bad_zip")


def test_missing_metadata():
    files = files_of(package())
    del files[META]
    refused(zip_of(files), "no_metadata")


@pytest.mark.parametrize("prolog", [
    '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>',
    '<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd">',
])
def test_dtd_and_entities_refused(prolog):
    data = repack(package(), meta=lambda m: m.replace('<?xml version="1.0" encoding="UTF-8"?>\n',
                                                      f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}\n'))
    assert "DTD" in refused(data, "bad_metadata").reason


def test_garbage_metadata():
    refused(repack(package(), meta=lambda m: m[:200]), "bad_metadata")


def test_patient_mismatch_between_entries():
    def second_patient(meta: str) -> str:
        cx = f'value="{INS}^^^&amp;{OID}&amp;ISO^NH"'
        at = meta.rindex(cx)
        return meta[:at] + cx.replace(INS, OTHER_INS) + meta[at + len(cx):]
    refused(repack(package(pdf(), pdf(b"%PDF-2", "Autre")), meta=second_patient), "patient_mismatch")


def test_patient_mismatch_between_entry_and_cda_record_target():
    good = cda_bytes()
    bad = cda_bytes(OTHER_INS)
    digest, new_digest = hashlib.sha1(good).hexdigest(), hashlib.sha1(bad).hexdigest()
    assert len(good) == len(bad)
    data = repack(package(cda()), meta=lambda m: m.replace(digest, new_digest), docs={"DOC0001.XML": bad})
    refused(data, "patient_mismatch")


def test_a_cda_is_read_up_to_its_body_only():
    body = b"<component><structuredBody>" + b"<a/>" * 2_000_000 + b"<not closed"   # never reached, so never refused
    header = cda_bytes().removesuffix(b"</ClinicalDocument>")
    assert cda_info(header + body) == ("11490-0", [(INS, OID)])
    assert cda_info(header + b"<component/></ClinicalDocument>") == cda_info(cda_bytes())


def test_a_cda_whose_header_is_an_element_bomb_is_refused():
    refused(cda_bomb(20 * 1024 * 1024), "cda_header_too_big")
    header = cda_bytes().removesuffix(b"</ClinicalDocument>")   # 6 elements
    at_the_limit = header + b"<a/>" * (CDA_HEADER_ELEMENTS - 6)
    assert cda_info(at_the_limit + b"<component/></ClinicalDocument>") == cda_info(cda_bytes())
    with pytest.raises(XdmError) as caught:
        cda_info(at_the_limit + b"<a/><component/></ClinicalDocument>")
    assert caught.value.code == "cda_header_too_big" and "10 000 éléments" in caught.value.reason


def test_writer_refuses_a_cda_of_another_patient():
    with pytest.raises(XdmError) as caught:
        package(cda(OTHER_INS))
    assert caught.value.code == "patient_mismatch"


def test_writer_refuses_a_non_ins_patient():
    with pytest.raises(ValueError):
        write_xdm([pdf()], patient_ins=INS, patient_oid="1.2.3", author=AUTHOR, source_id="1.2.3", now=NOW)


@functools.cache
def _sample() -> bytes:
    return package(cda(), pdf())


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_corrupted_archives_only_ever_raise_xdm_error(data):
    original = bytearray(_sample())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(original) - 1))
        original[at] = data.draw(st.integers(0, 255))
    try:
        read_xdm(bytes(original))
    except XdmError as exc:
        assert exc.code and exc.reason


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_edited_metadata_only_ever_raises_xdm_error(data):
    files = files_of(_sample())
    meta = list(files[META].decode())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(meta) - 1))
        meta[at] = data.draw(st.sampled_from(list('^&|"<>/ 0x-.') + ["", "\x00", "é"]))
    files[META] = "".join(meta).encode()
    try:
        read_xdm(zip_of(files))
    except XdmError as exc:
        assert exc.code and exc.reason
