"""The judge stage reads a mail's IHE_XDM archive in a parse worker (bridge/parse_pool.py), never in the bridge's
process, and only once its sender is trusted; an archive refused there, or past the worker's deadline, sends the mail
to quarantine with its reason in French."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import bridge.xdm
from bridge.mail_in import MailLimits, parse_mail
from bridge.metrics import Metrics
from bridge.parse_pool import MailParser, ParserCrashed
from bridge.stages.judge import Judged, judge, judged_before
from bridge.stages.outcome import Outcome
from bridge.xdm import XdmLimits, XdmPackage, read_xdm
from liaison.trusted import TrustedDomains
from tests.support.hostile import metadata_bomb, xdm_mail
from tests.support.mss import INS, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
STRANGER = "inconnu@messagerie-ordinaire.test"
TO = "liaison@msp-demo.mssante.test"


class _Store:
    """Every mail is new (the duplicates are bridge/store.py's, tested on the real database)."""

    async def duplicate_of(self, *args) -> None:
        return None


@pytest.fixture
def d():
    settings = SimpleNamespace(sender_authentication_required=True)
    return SimpleNamespace(trusted=TrustedDomains(frozenset({"chu-demo.mssante.test"})), store=_Store(),
                           metrics=Metrics(), settings=settings)


def delivered(raw: bytes, sender: str):
    """The mail as the delivery leaves it: the envelope sender recorded (Return-Path), for the sender check."""
    return parse_mail(f"Return-Path: <{sender}>\r\n".encode() + raw)


@pytest.fixture
async def parser():
    p = MailParser(MailLimits(), "liaison.test", deadline=1.0)
    yield p
    p.close()


@pytest.fixture
def nowhere_here(monkeypatch):
    """An archive read in the bridge's own process fails the test."""
    def here(*args, **kwargs):
        raise AssertionError("IHE_XDM read in the bridge's process")
    monkeypatch.setattr(bridge.xdm, "read_xdm", here)


async def test_a_trusted_sender_s_archive_is_read_in_a_worker_and_comes_back_typed(d, parser, nowhere_here):
    archive = xdm_letter()
    judged = await judge(d, parser, "mail-1", delivered(xdm_mail(archive, CARDIO, TO), CARDIO))
    assert isinstance(judged, Judged) and judged.trusted
    assert isinstance(judged.xdm, XdmPackage) and judged.xdm.documents[0].patient_ins == INS
    assert len(parser.pids()) == 1, "read by a worker"


async def test_an_untrusted_sender_s_archive_is_not_read_at_all(d, parser, nowhere_here):
    raw = xdm_mail(metadata_bomb(20 * 1024 * 1024), STRANGER, TO)
    judged = await judge(d, parser, "mail-2", delivered(raw, STRANGER))
    assert isinstance(judged, Judged) and not judged.trusted and judged.xdm is None
    assert parser.pids() == [], "no worker even started"


async def test_an_archive_past_the_worker_s_deadline_sends_the_mail_to_quarantine(d, request):
    # the archive's own limits lifted, for its METADATA.XML to reach the worker's deadline
    parser = MailParser(MailLimits(), "liaison.test", deadline=1.0,
                        xdm_limits=XdmLimits(max_metadata_bytes=64 * 1024 * 1024, max_metadata_tags=10**9))
    request.addfinalizer(parser.close)
    raw = xdm_mail(metadata_bomb(20 * 1024 * 1024), CARDIO, TO)
    outcome = await judge(d, parser, "mail-3", delivered(raw, CARDIO))
    assert isinstance(outcome, Outcome) and outcome.quarantine is not None
    assert outcome.quarantine.code == "xdm_too_complex" and outcome.sender == CARDIO and outcome.trusted
    assert "archive IHE_XDM" in outcome.quarantine.reason
    archive = xdm_letter()
    judged = await judge(d, parser, "mail-4", delivered(xdm_mail(archive, CARDIO, TO), CARDIO))
    assert isinstance(judged, Judged) and judged.xdm == read_xdm(archive), "the next mail is read"


async def test_routed_by_hand_an_unreadable_archive_does_not_hold_the_letter_back(parser):
    mail = delivered(xdm_mail(metadata_bomb(20 * 1024 * 1024), STRANGER, TO), STRANGER)
    judged = await judged_before(parser, mail, trusted=False)
    assert judged.mail is mail and judged.xdm is None
    routed = await judged_before(parser, delivered(xdm_mail(xdm_letter(), STRANGER, TO), STRANGER), False)
    assert routed.xdm is not None


async def test_routed_by_hand_a_reader_that_died_on_the_archive_does_not_hold_the_letter_back():
    """A worker that died on the archive (not its deadline: a crash) reads as an archive that cannot be read: the
    letter is posted without it, instead of the mail staying « routing » and being tried again every half second."""
    class Dying:
        async def read_xdm(self, archive: bytes):
            raise ParserCrashed("le processus de lecture du courriel s'est arrêté (code -9)")
    mail = delivered(xdm_mail(xdm_letter(), CARDIO, TO), CARDIO)
    judged = await judged_before(Dying(), mail, trusted=True)
    assert judged.mail is mail and judged.xdm is None
