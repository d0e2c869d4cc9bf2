"""The durable poison counter (bridge/inbound.py `Inbound.process`, on the real store): a mail that broke the bridge
POISON_AFTER times, by an error or by the bridge dying on it, is set aside, also after a restart; a pass that ends in
« try again later » does not count against the mail."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from bridge.deps import BridgeSettings
from bridge.imap import Fetched
from bridge.inbound import POISON_AFTER, Inbound
from bridge.metrics import Metrics
from bridge.store import BridgeStore
from liaison.stores.mail import MailStore
from liaison.matrix import MatrixError
from tests.fakes import FakeMatrix

RAW = b"From: <c.lefebvre@chu-demo.mssante.test>\r\nSubject: Lettre\r\n\r\nBonjour.\r\n"


@pytest.fixture
def inbound(engine):
    settings = BridgeSettings(address="liaison@msp-demo.mssante.test", display_name="MSP", server_name="hs",
                              bot_user_id="@bot:hs")
    d = SimpleNamespace(settings=settings, store=BridgeStore(engine), mail=MailStore(engine), metrics=Metrics(),
                        matrix=FakeMatrix())   # no quarantine room: told nowhere
    made = Inbound(d, imap=None, mailbox="INBOX", poll_seconds=1)
    yield made
    made.parser.close()


async def _state(inbound, uid: int):
    return await inbound.d.store.mail_state("INBOX", 7, uid)


async def test_a_mail_the_bridge_died_on_is_set_aside_after_a_restart(inbound):
    mail_id = await inbound.d.store.begin_mail("INBOX", 7, 1)
    for _ in range(POISON_AFTER):   # passes that began and never ended: the process was killed on it
        await inbound.d.store.count_attempt(mail_id)
    restarted = Inbound(inbound.d, imap=None, mailbox="INBOX", poll_seconds=1)   # nothing in memory
    try:
        assert await restarted.process(Fetched(7, 1, RAW)) is True
    finally:
        restarted.parser.close()
    assert await _state(inbound, 1) == (mail_id, "quarantined")
    [kept] = await inbound.d.mail.quarantined()
    assert kept.reason_code == "internal" and "erreur interne, réf." in kept.reason


async def test_a_mail_that_keeps_raising_is_set_aside_at_the_last_allowed_pass(inbound, monkeypatch):
    async def broken(mail_id, raw):
        raise KeyError("a bug the mail triggers")
    monkeypatch.setattr(inbound, "handle", broken)
    results = [await inbound.process(Fetched(7, 2, RAW)) for _ in range(POISON_AFTER)]
    assert results == [False] * (POISON_AFTER - 1) + [True]
    assert (await _state(inbound, 2))[1] == "quarantined"


async def test_retrying_later_does_not_count_against_the_mail(inbound, monkeypatch):
    async def away(mail_id, raw):
        raise MatrixError("send", "M_UNKNOWN")
    monkeypatch.setattr(inbound, "handle", away)
    for _ in range(3 * POISON_AFTER):
        assert await inbound.process(Fetched(7, 3, RAW)) is False
    mail_id, state = await _state(inbound, 3)
    assert state == "received" and await inbound.d.store.count_attempt(mail_id) == 1
