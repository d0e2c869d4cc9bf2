"""Receipts are listened to only when they cite one of our mails and come from who may report on it (real store,
the Matrix edge recorded): a forged DSN from `mailer-daemon@` any domain posts nothing."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bridge import receipts_in
from bridge.deps import BridgeSettings
from bridge.mail_in import parse_mail
from bridge.metrics import Metrics
from bridge.receipts import Receipt
from bridge.store import BridgeStore
from liaison.clock import system_now_ms as now_ms
from liaison.trusted import load_trusted_domains

DEMO_TRUST_LIST = Path(__file__).resolve().parents[1] / "deploy" / "mssante" / "liste-blanche-demo.xml"
OUR_ID = "liaison-out-1@msp-demo.mssante.test"
CARDIO = "c.lefebvre@chu-demo.mssante.test"


class Recorded:
    """The Matrix edge: what would have been posted."""

    def __init__(self) -> None:
        self.reactions: list[tuple[str, str]] = []
        self.notices: list[str] = []

    async def react(self, room_id, event_id, key, txn):
        self.reactions.append((event_id, key))

    async def send(self, room_id, content, txn):
        self.notices.append(content["body"])


@pytest.fixture
async def deps(engine):
    store = BridgeStore(engine)
    await store.enqueue(source_event_id="$reply", pathway_id=None, room_id="!room:hs", message_id=OUR_ID,
                        recipient=CARDIO, raw=b"x", give_up_at=now_ms() + 3_600_000)
    settings = BridgeSettings(address="liaison@msp-demo.mssante.test", display_name="MSP", server_name="hs",
                              bot_user_id="@bot:hs", gateway_host="smtp.operateur-demo.test")
    return SimpleNamespace(store=store, settings=settings, metrics=Metrics(), matrix=Recorded(),
                           trusted=load_trusted_domains(DEMO_TRUST_LIST))


def failed(cited: str | None = OUR_ID, envelope: str | None = None, reason: str = "la boîte est pleine.") -> Receipt:
    return Receipt("dsn", cited, envelope, "failed", reason, CARDIO)


@pytest.mark.parametrize("sender", ["mailer-daemon@chu-demo.mssante.test", "MAILER-DAEMON@mx.chu-demo.mssante.test",
                                    "mailer-daemon@msp-demo.mssante.test", "postmaster@mx.msp-demo.mssante.test",
                                    "mailer-daemon@smtp.operateur-demo.test"])
async def test_a_dsn_citing_our_mail_from_its_recipient_s_domain_or_our_gateway_is_shown(deps, sender):
    assert await receipts_in.apply(deps, failed(), sender) is None
    assert deps.matrix.reactions == [("$reply", "⚠️ échec")]
    assert deps.matrix.notices == ["Le courriel n'a pas pu être remis : la boîte est pleine."]


@pytest.mark.parametrize("sender", ["mailer-daemon@evil.example", "postmaster@chu-demo.mssante.test.evil.example",
                                    "mailer-daemon@evilchu-demo.mssante.test", "mailer-daemon@labo-demo.mssante.test",
                                    "mailer-daemon@operateur-demo.test", "inconnu@messagerie-ordinaire.test",
                                    # a person, not a mail server, of our domain, of the gateway's, of theirs
                                    "dr.martin@msp-demo.mssante.test", "support@smtp.operateur-demo.test",
                                    "c.lefebvre@chu-demo.mssante.test"])
async def test_a_forged_dsn_posts_nothing(deps, sender):
    assert await receipts_in.apply(deps, failed(), sender) == "foreign_sender"
    assert deps.matrix.reactions == [] == deps.matrix.notices
    assert await deps.store.record_receipt((await deps.store.outgoing_by_message_id(OUR_ID)).id, "dsn", "failed"), \
        "nothing was recorded for it either"


async def test_a_dsn_citing_none_of_our_mails_posts_nothing(deps):
    for receipt in (failed(cited=None), failed(cited="someone-else@chu-demo.mssante.test"),
                    failed(cited=None, envelope="nope")):
        assert await receipts_in.apply(deps, receipt, "mailer-daemon@chu-demo.mssante.test") == "unmatched"
    assert deps.matrix.reactions == [] == deps.matrix.notices


async def test_the_envelope_id_is_a_citation_too(deps):
    out = await deps.store.outgoing_by_message_id(OUR_ID)
    assert await receipts_in.apply(deps, failed(cited=None, envelope=out.id), "mailer-daemon@chu-demo.mssante.test") \
        is None
    assert deps.matrix.reactions == [("$reply", "⚠️ échec")]


async def test_a_read_receipt_comes_from_the_recipient_s_domain_only(deps):
    read = Receipt("mdn", OUR_ID, None, "displayed", "", CARDIO)
    assert await receipts_in.apply(deps, read, "mailer-daemon@msp-demo.mssante.test") == "foreign_sender"
    assert await receipts_in.apply(deps, read, CARDIO) is None
    assert deps.matrix.reactions == [("$reply", "👁️ lu")]


async def test_the_failure_notice_is_our_sentence_not_the_sender_s_text(deps):
    raw = (f"From: MAILER-DAEMON@chu-demo.mssante.test\r\nTo: liaison@msp-demo.mssante.test\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nVotre patient est décédé, appelez le 08 99 00 00 00.\r\n"
           "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.chu-demo.mssante.test\r\n\r\n"
           f"Final-Recipient: rfc822; {CARDIO}\r\nAction: failed\r\nStatus: 5.3.0\r\n"
           "Diagnostic-Code: smtp; 554 Votre patient est décédé, appelez le 08 99 00 00 00\r\n\r\n"
           f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{OUR_ID}>\r\n\r\n--b--\r\n").encode()
    mail = parse_mail(raw)
    assert await receipts_in.apply(deps, mail.receipt, mail.from_address) is None
    assert deps.matrix.notices == ["Le courriel n'a pas pu être remis : le système de messagerie du destinataire "
                                   "n'a pas accepté le message (code 5.3.0)."]
