"""Mails and their IHE_XDM archives are read in worker processes: the event loop keeps its pace, a deadline and a
memory ceiling hold, a worker that dies is replaced and the mail is not blamed for more than that death."""
from __future__ import annotations

import asyncio
import io
import os
import signal
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from bridge.mail_guard import MAX_ADDRESS_BYTES, MAX_ENCODED_WORDS, MAX_HEADER_LINES
from bridge.mail_in import MailLimits, MailRejected, parse_mail
from bridge.parse_pool import MailParser, ParserCrashed
from bridge.xdm import XdmError, XdmLimits, XdmPackage, read_xdm
from bridge.xdm_meta import CDA_HEADER_ELEMENTS
from tests.support.hostile import (big_mail, element_bomb, empty_parts, folded_encoded_from, metadata_bomb, references,
                                  zip_of_entries)
from tests.support.mss import INS, xdm_full, xdm_letter, xdm_one

# The archive's own limits lifted, for a METADATA.XML bomb to reach the worker's deadline and ceiling.
NO_METADATA_LIMITS = XdmLimits(max_metadata_bytes=64 * 1024 * 1024, max_metadata_tags=10**9)

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


def html_mail(mib: float) -> bytes:
    """An HTML-only mail that costs parse_mail about 0.9 s of CPU per MiB (measured)."""
    return (b"From: a@b.fr\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            + b"<p>Bonjour <b>docteur</b>, voici.</p>\r\n" * int(mib * 1024 * 1024 / 40))


@pytest.fixture
async def parser():
    p = MailParser(MailLimits(), "liaison.test")
    yield p
    p.close()


async def _lag_while(work) -> tuple[object, float]:
    """(what `work` returned or raised, the event loop's worst lag meanwhile, in seconds)."""
    worst, running = 0.0, True

    async def tick() -> None:
        nonlocal worst
        while running:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)
    ticker = asyncio.create_task(tick())
    try:
        result = await work
    except (MailRejected, XdmError, ParserCrashed) as err:
        result = err
    running = False
    await ticker
    return result, worst


async def test_a_parsed_mail_is_the_one_parse_mail_gives(parser):
    raw = (FIXTURES / "hospital_letter_pdf.eml").read_bytes()
    assert await parser.parse(raw) == parse_mail(raw, MailLimits(), "liaison.test")
    with pytest.raises(MailRejected) as refused:
        await parser.parse((FIXTURES / "smime_encrypted.eml").read_bytes())
    assert refused.value.code == "smime_encrypted" and "S/MIME" in refused.value.reason


async def test_the_loop_keeps_its_pace_while_a_costly_mail_is_parsed(parser):
    await parser.parse(b"From: a@b.fr\r\n\r\nx")   # the worker started
    mail, lag = await _lag_while(parser.parse(html_mail(1.5)))
    assert mail.html and lag < 0.1, lag


async def test_past_the_deadline_the_worker_is_killed_and_the_mail_refused():
    parser = MailParser(MailLimits(), "liaison.test", deadline=0.5)
    try:
        await parser.parse(b"From: a@b.fr\r\n\r\nx")
        [first] = parser.pids()
        started = time.monotonic()
        refused, lag = await _lag_while(parser.parse(html_mail(4)))
        assert isinstance(refused, MailRejected) and refused.code == "too_complex"
        assert time.monotonic() - started < 2 and lag < 0.1
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
        assert (await parser.parse(b"From: b@c.fr\r\n\r\ny")).from_address == "b@c.fr", "a new worker took over"
    finally:
        parser.close()


async def test_a_mail_that_needs_more_than_the_ceiling_is_refused_without_growing_the_bridge():
    parser = MailParser(MailLimits(), "liaison.test", ceiling=64 * 1024 * 1024)
    before = psutil.Process().memory_info().rss
    try:
        with pytest.raises(MailRejected) as refused:
            await parser.parse(big_mail(20 * 1024 * 1024, "a@b.fr", "c@d.fr"))
        assert refused.value.code == "too_complex"
        assert (await parser.parse(b"From: b@c.fr\r\n\r\ny")).from_address == "b@c.fr"
    finally:
        parser.close()
    assert psutil.Process().memory_info().rss - before < 100 * 1024 * 1024


async def test_a_worker_killed_mid_mail_is_a_crash_and_is_replaced(parser):
    await parser.parse(b"From: a@b.fr\r\n\r\nx")
    [pid] = parser.pids()
    parsing = asyncio.create_task(parser.parse(html_mail(4)))
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ParserCrashed):
        await parsing
    assert (await parser.parse(b"From: b@c.fr\r\n\r\ny")).from_address == "b@c.fr"


async def test_a_worker_that_died_idle_is_replaced_without_blaming_the_next_mail(parser):
    await parser.parse(b"From: a@b.fr\r\n\r\nx")
    [pid] = parser.pids()
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert (await parser.parse(b"From: b@c.fr\r\n\r\ny")).from_address == "b@c.fr"


def _worker_cost(parser: MailParser) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of the parser's single worker so far."""
    [pid] = parser.pids()
    times = psutil.Process(pid).cpu_times()
    with open(f"/proc/{pid}/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return times.user + times.system, peak / 1024


async def test_mails_at_every_limit_cost_under_a_second_and_200_mb():
    """The raw-byte limits are set so that what passes them stays cheap for the parser (targets of #14)."""
    cases = {
        "poison From": folded_encoded_from(15_000),
        "poison parts": empty_parts(40_000),
        "poison References": references(60_000),
        "encoded words": b"From: a@b.fr\r\nSubject: " + b"=?utf-8?q?d=C3=A9monstration?= " * (MAX_ENCODED_WORDS - 1)
                         + b"\r\n\r\nx",
        "addresses": b"From: a@b.fr\r\nTo: " + b", ".join(b'"Dr %d" <p%d@hop.fr>' % (i, i) for i in range(1400))[
            :MAX_ADDRESS_BYTES - 200] + b"\r\n\r\nx",
        "header lines": b"From: a@b.fr\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADER_LINES - 5))
                        + b"\r\nx",
    }
    for name, raw in cases.items():
        parser = MailParser(MailLimits(), "liaison.test", workers=1)
        try:
            await parser.parse(b"From: a@b.fr\r\n\r\nx")
            cpu0, _ = _worker_cost(parser)
            try:
                await parser.parse(raw)
            except MailRejected:
                pass
            cpu, peak = _worker_cost(parser)
        finally:
            parser.close()
        assert cpu - cpu0 < 1.0 and peak < 200, (name, cpu - cpu0, peak)


async def test_an_archive_read_in_a_worker_is_the_package_read_xdm_gives(parser):
    archive = xdm_letter()
    package = await parser.read_xdm(archive)
    assert isinstance(package, XdmPackage) and package == read_xdm(archive)
    with pytest.raises(XdmError) as refused:
        await parser.read_xdm(zip_of_entries(60))
    assert refused.value.code == "too_many_entries" and refused.value.reason.startswith("L'archive IHE_XDM contient 60")
    assert (await parser.parse(b"From: b@c.fr\r\n\r\ny")).from_address == "b@c.fr", "the same workers read mails"


async def test_an_archive_past_the_deadline_is_refused_and_the_loop_keeps_its_pace():
    parser = MailParser(MailLimits(), "liaison.test", deadline=0.5, xdm_limits=NO_METADATA_LIMITS)
    bomb = metadata_bomb(20 * 1024 * 1024)   # ~4 s and over 500 MB to parse whole
    try:
        await parser.parse(b"From: a@b.fr\r\n\r\nx")
        started = time.monotonic()
        refused, lag = await _lag_while(parser.read_xdm(bomb))
        assert isinstance(refused, XdmError) and refused.code == "xdm_too_complex", refused
        assert "IHE_XDM" in refused.reason and "trop de temps ou de mémoire" in refused.reason
        assert time.monotonic() - started < 2 and lag < 0.1, lag
        assert (await parser.read_xdm(xdm_letter())).documents, "a new worker took over"
    finally:
        parser.close()


async def test_an_archive_that_needs_more_than_the_ceiling_is_refused_without_growing_the_bridge():
    parser = MailParser(MailLimits(), "liaison.test", ceiling=128 * 1024 * 1024, xdm_limits=NO_METADATA_LIMITS)
    bomb = metadata_bomb(20 * 1024 * 1024)
    before = psutil.Process().memory_info().rss
    try:
        with pytest.raises(XdmError) as refused:
            await parser.read_xdm(bomb)
        assert refused.value.code == "xdm_too_complex"
        assert (await parser.read_xdm(xdm_letter())).documents
    finally:
        parser.close()
    assert psutil.Process().memory_info().rss - before < 100 * 1024 * 1024


def _metadata_at_the_limits(limits: XdmLimits) -> bytes:
    """An IHE_XDM.ZIP whose METADATA.XML is as costly as its limits let it be: as many tags as allowed, the rest of
    its bytes as attributes of one element (no two alike: each its own dictionary entry)."""
    elements = b"<a/>" * (limits.max_metadata_tags - 2)
    attributes = b"".join(b' a%d="%d"' % (i, i) for i in range(limits.max_metadata_bytes // 10))
    attributes = attributes[:attributes.rindex(b" ", 0, limits.max_metadata_bytes - len(elements) - 16)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IHE_XDM/SUBSET01/METADATA.XML", b"<r" + attributes + b">" + elements + b"</r>")
    return out.getvalue()


def _cda_at_the_limits() -> bytes:
    """An IHE_XDM.ZIP of one CDA of 49 MB: a header of as many elements as allowed, a body of empty elements."""
    header = (b'<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="11490-0"/><recordTarget><patientRole>'
              b'<id root="1.2.250.1.213.1.4.10" extension="%s"/></patientRole></recordTarget>' % INS.encode()
              + b"<a/>" * (CDA_HEADER_ELEMENTS - 5))
    body = element_bomb(49 * 1024 * 1024 - len(header)).replace(b"<r>", b"<component>").replace(b"</r>", b"</component>")
    return xdm_one(header + body[body.index(b"<component>"):] + b"</ClinicalDocument>", "text/xml")


async def test_archives_at_every_limit_cost_under_a_second_and_200_mb():
    """The archive's limits (bridge.xdm.XdmLimits, CDA_HEADER_ELEMENTS) are set so that what passes them stays cheap
    for the worker."""
    cases = {"METADATA.XML at its limits": _metadata_at_the_limits(XdmLimits()),
             "50 MB of documents": xdm_full(), "a CDA of 49 MB, its header at its limit": _cda_at_the_limits()}
    for name, archive in cases.items():
        parser = MailParser(MailLimits(), "liaison.test", workers=1)
        try:
            await parser.parse(b"From: a@b.fr\r\n\r\nx")
            cpu0, _ = _worker_cost(parser)
            try:
                read = await parser.read_xdm(archive)
                assert read.documents[-1].cda_code is None or read.documents[0].cda_patient_ins == INS, name
            except XdmError as err:
                assert err.code == "bad_metadata", (name, err.code)   # read whole, then found to describe nothing
            cpu, peak = _worker_cost(parser)
        finally:
            parser.close()
        assert cpu - cpu0 < 1.0 and peak < 200, (name, cpu - cpu0, peak)
