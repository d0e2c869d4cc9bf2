"""The bridge's SMTP and IMAP modules against the real local gateway (Dovecot + SMTPS)."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from bridge.imap import Fetched, ImapClient, ImapError, ImapSettings, mailbox_name
from bridge.smtp import SmtpClient, SmtpError, SmtpSettings, xtext
from tests.support.mailgw import GatewayProcess, running_gateway

BRIDGE = "liaison@msp-demo.mssante.test"
CARDIO = "c.lefebvre@chu-demo.mssante.test"


@pytest.fixture(scope="module")
def gw():
    with running_gateway() as gateway:
        yield gateway


def smtp_settings(info: dict, box: dict) -> SmtpSettings:
    return SmtpSettings(info["smtp"]["host"], info["smtp"]["port"], info["ca"], box["cert"], box["key"], timeout=10)


def imap_settings(info: dict, box: dict, **over) -> ImapSettings:
    fields = dict(host=info["imap"]["host"], port=info["imap"]["port"], ca_file=info["ca"], cert_file=box["cert"],
                  key_file=box["key"], user=box["imap_user"], password=box["imap_password"], timeout=10)
    return ImapSettings(**{**fields, **over})


def mail(sender: str, to: str) -> tuple[str, bytes]:
    mid = f"<{uuid.uuid4().hex}@test>"
    return mid, (f"From: {sender}\r\nTo: {to}\r\nSubject: Compte rendu\r\nMessage-ID: {mid}\r\n\r\n"
                 "Bonjour.\r\n").encode()


def having(found: list[Fetched], needle: str) -> list[Fetched]:
    return [f for f in found if needle.encode() in f.raw]


@pytest.fixture
async def inbox(gw: GatewayProcess):
    client = ImapClient(imap_settings(gw.info, gw.info["bridge"]))
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
async def cardio(gw: GatewayProcess):
    client = SmtpClient(smtp_settings(gw.info, gw.info["externals"][0]))
    yield client
    await client.close()


async def wait_mail(client: ImapClient, needle: str, timeout: float = 5.0) -> list[Fetched]:
    deadline = time.monotonic() + timeout
    while True:
        found = having(await client.fetch_all(), needle)
        if found or time.monotonic() > deadline:
            return found
        await client.wait_for_change(0.5)


def test_mailbox_names_use_modified_utf7() -> None:
    assert mailbox_name("Traités") == '"Trait&AOk-s"'
    assert mailbox_name("INBOX") == '"INBOX"'
    assert mailbox_name("A&B") == '"A&-B"'
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"


async def test_mail_from_an_external_reaches_the_bridge_with_its_uidvalidity(gw, inbox: ImapClient,
                                                                            cardio: SmtpClient) -> None:
    mid, raw = mail(CARDIO, BRIDGE)
    detail_mid, detail = mail(CARDIO, "liaison+P-7K3Q9@msp-demo.mssante.test")
    await cardio.send(raw, sender=CARDIO, recipients=[BRIDGE], envid=uuid.uuid4().hex)
    await cardio.send(detail, sender=CARDIO, recipients=["liaison+P-7K3Q9@msp-demo.mssante.test"])
    got = await wait_mail(inbox, detail_mid)
    found = await inbox.fetch_all()
    assert got and having(found, mid)
    assert inbox.uidvalidity > 0 and all(f.uidvalidity == inbox.uidvalidity for f in found)
    assert [f.uid for f in found] == sorted(f.uid for f in found)
    assert having(found, mid)[0].raw.endswith(b"Bonjour.\r\n")


async def test_wait_for_change_wakes_within_a_second_of_a_delivery(gw, inbox: ImapClient, cardio: SmtpClient) -> None:
    await inbox.fetch_all()
    mid, raw = mail(CARDIO, BRIDGE)

    async def deliver_soon() -> None:
        await asyncio.sleep(0.1)
        await cardio.send(raw, sender=CARDIO, recipients=[BRIDGE], notify=False)

    sending = asyncio.create_task(deliver_soon())
    started = time.monotonic()
    assert await inbox.wait_for_change(5) is True
    elapsed = time.monotonic() - started
    await sending
    assert elapsed < 1.3, elapsed
    assert having(await inbox.fetch_all(), mid)


async def test_wait_for_change_returns_false_after_its_timeout(inbox: ImapClient) -> None:
    await inbox.fetch_all()
    started = time.monotonic()
    assert await inbox.wait_for_change(0.3) is False
    assert 0.25 < time.monotonic() - started < 2


async def test_move_to_done_takes_the_message_out_of_the_inbox(gw, inbox: ImapClient, cardio: SmtpClient) -> None:
    mid, raw = mail(CARDIO, BRIDGE)
    await cardio.send(raw, sender=CARDIO, recipients=[BRIDGE], notify=False)
    target = (await wait_mail(inbox, mid))[0]
    await inbox.move_to_done(target.uid)
    assert not having(await inbox.fetch_all(), mid)
    assert having(await inbox.fetch_folder("Traités"), mid)
    again = ImapClient(imap_settings(gw.info, gw.info["bridge"]))
    await again.connect()  # the folder exists now: no second CREATE
    await again.close()


@pytest.mark.parametrize("which", ["foreign", "password"])
async def test_imap_refuses_a_foreign_certificate_or_a_wrong_password(gw: GatewayProcess, which: str) -> None:
    info, bridge = gw.info, gw.info["bridge"]
    over = ({"cert_file": info["foreign"]["cert"], "key_file": info["foreign"]["key"]} if which == "foreign"
            else {"password": "mauvais"})
    client = ImapClient(imap_settings(info, bridge, **over))
    with pytest.raises(ImapError):
        await client.connect()
    await client.close()


async def test_smtp_asks_for_dsn_and_the_success_report_comes_back(gw: GatewayProcess, inbox: ImapClient) -> None:
    client = SmtpClient(smtp_settings(gw.info, gw.info["bridge"]))
    envid = f"liaison-{uuid.uuid4().hex}"
    _, raw = mail(BRIDGE, CARDIO)
    try:
        await client.send(raw, sender=BRIDGE, recipients=[CARDIO], envid=envid)
    finally:
        await client.close()
    report = await wait_mail(inbox, f"Original-Envelope-Id: {envid}")
    assert report and b"Action: delivered" in report[0].raw


async def test_smtp_5xx_is_permanent(gw: GatewayProcess, cardio: SmtpClient) -> None:
    _, raw = mail(CARDIO, "someone@gmail.com")
    with pytest.raises(SmtpError) as relay:
        await cardio.send(raw, sender=CARDIO, recipients=["someone@gmail.com"])
    assert relay.value.permanent and relay.value.code == 550 and "relay refused" in str(relay.value)
    _, raw = mail(BRIDGE, BRIDGE)
    with pytest.raises(SmtpError) as sender:
        await cardio.send(raw, sender=BRIDGE, recipients=[BRIDGE])
    assert sender.value.permanent and sender.value.code == 550
    mid, raw = mail(CARDIO, BRIDGE)
    await cardio.send(raw, sender=CARDIO, recipients=[BRIDGE])  # the connection is still usable


async def test_smtp_foreign_certificate_is_a_connection_refusal(gw: GatewayProcess) -> None:
    info = gw.info
    client = SmtpClient(smtp_settings(info, info["foreign"]))
    _, raw = mail(CARDIO, BRIDGE)
    with pytest.raises(SmtpError) as refused:
        await client.send(raw, sender=CARDIO, recipients=[BRIDGE])
    assert not refused.value.permanent and refused.value.code is None
    assert "TLS" in str(refused.value)
    gw.wait_log("unable to get local issuer certificate")
    await client.close()


async def test_smtp_reuses_its_connection_and_reconnects_once_when_it_broke(gw, cardio: SmtpClient) -> None:
    _, raw = mail(CARDIO, BRIDGE)
    await cardio.send(raw, sender=CARDIO, recipients=[BRIDGE], notify=False)
    first = cardio._smtp
    await cardio.send(raw, sender=CARDIO, recipients=[BRIDGE], notify=False)
    assert cardio._smtp is first
    first.transport.abort()  # the server went away; the client has not noticed yet
    await cardio.send(raw, sender=CARDIO, recipients=[BRIDGE], notify=False)
    assert cardio._smtp is not first and cardio._smtp.is_connected
