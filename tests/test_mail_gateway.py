"""The local MSSanté-like gateway, against real Dovecot and the real SMTPS server (stdlib clients)."""
from __future__ import annotations

import email
import imaplib
import json
import smtplib
import ssl
import time
import uuid
from email.policy import default as default_policy

import pytest

from tests.support.mailgw import GatewayProcess, running_gateway

BRIDGE = "liaison@msp-demo.mssante.test"
LAB = "resultats@labo-demo.mssante.test"


@pytest.fixture(scope="module")
def gw():
    with running_gateway() as gateway:
        yield gateway


def _ctx(info: dict, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=info["ca"])
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def _smtp(info: dict, box: dict | None) -> smtplib.SMTP_SSL:
    ctx = _ctx(info, box["cert"], box["key"]) if box else _ctx(info)
    return smtplib.SMTP_SSL(info["smtp"]["host"], info["smtp"]["port"], context=ctx, timeout=10)


def _mail(sender: str, to: str, subject: str = "Compte rendu") -> tuple[str, bytes]:
    mid = f"<{uuid.uuid4().hex}@test>"
    raw = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour.\r\n").encode()
    return mid, raw


def _inbox(info: dict, box: dict, folder: str = "INBOX") -> list[email.message.EmailMessage]:
    imap = imaplib.IMAP4_SSL(info["imap"]["host"], info["imap"]["port"], ssl_context=_ctx(info, box["cert"], box["key"]))
    try:
        imap.login(box["imap_user"], box["imap_password"])
        imap.select(folder)
        _, data = imap.fetch("1:*", "(BODY.PEEK[])")
        return [email.message_from_bytes(d[1], policy=default_policy) for d in data if isinstance(d, tuple)]
    finally:
        imap.logout()


def _wait_for(info: dict, box: dict, predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in _inbox(info, box) if predicate(m)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_ready_file_has_the_stack_shape(gw: GatewayProcess) -> None:
    info = gw.info
    assert set(info) >= {"smtp", "imap", "ca", "bridge_address", "bridge", "externals", "untrusted", "foreign", "pid"}
    assert info["bridge_address"] == BRIDGE == info["bridge"]["address"]
    assert info["bridge"]["display_name"] == "MSP de démonstration"
    assert [b["address"] for b in info["externals"]] == ["c.lefebvre@chu-demo.mssante.test",
                                                         "resultats@labo-demo.mssante.test"]
    assert info["untrusted"][0]["address"] == "inconnu@messagerie-ordinaire.test"
    assert info["pid"] == gw.process.pid


def test_external_mail_reaches_the_bridge_inbox_including_detail_address(gw: GatewayProcess) -> None:
    info, ext = gw.info, gw.info["externals"][0]
    plain_id, plain = _mail(ext["address"], BRIDGE)
    detail_id, detail = _mail(ext["address"], "liaison+P-7K3Q9@msp-demo.mssante.test")
    with _smtp(info, ext) as smtp:
        assert "dsn" in smtp.ehlo()[1].decode().lower()
        smtp.sendmail(ext["address"], [BRIDGE], plain)
        smtp.sendmail(ext["address"], ["liaison+P-7K3Q9@msp-demo.mssante.test"], detail)
    ids = {m["Message-ID"] for m in _wait_for(info, info["bridge"], lambda m: m["Message-ID"] == detail_id)}
    ids |= {m["Message-ID"] for m in _inbox(info, info["bridge"])}
    assert {plain_id, detail_id} <= ids


def test_delivered_mail_records_the_envelope_sender_and_whom_the_gateway_authenticated(gw: GatewayProcess) -> None:
    info, ext = gw.info, gw.info["externals"][0]
    mid, raw = _mail(ext["address"], BRIDGE)
    with _smtp(info, ext) as smtp:
        smtp.sendmail(ext["address"], [BRIDGE], raw)
    [got] = _wait_for(info, info["bridge"], lambda m: m["Message-ID"] == mid)
    assert got.get_all("Return-Path") == [f"<{ext['address']}>"], "written by Dovecot's LMTP from MAIL FROM"
    assert got.get_all("Authentication-Results") == [f"mssante-gw.test; x509=pass smtp.mailfrom={ext['address']}"]


def test_untrusted_domain_is_accepted_like_a_lax_operator(gw: GatewayProcess) -> None:
    info, box = gw.info, gw.info["untrusted"][0]
    mid, raw = _mail(box["address"], BRIDGE)
    with _smtp(info, box) as smtp:
        smtp.sendmail(box["address"], [BRIDGE], raw)
    assert _wait_for(info, info["bridge"], lambda m: m["Message-ID"] == mid)


@pytest.mark.parametrize("which", ["none", "foreign"])
def test_imap_login_needs_a_certificate_from_the_test_ca(gw: GatewayProcess, which: str) -> None:
    info, bridge = gw.info, gw.info["bridge"]
    ctx = _ctx(info, info["foreign"]["cert"], info["foreign"]["key"]) if which == "foreign" else _ctx(info)
    with pytest.raises((imaplib.IMAP4.error, ssl.SSLError, ConnectionError)):
        imap = imaplib.IMAP4_SSL(info["imap"]["host"], info["imap"]["port"], ssl_context=ctx)
        try:
            imap.login(bridge["imap_user"], bridge["imap_password"])
        finally:
            imap.shutdown()


@pytest.mark.parametrize("which,reason", [("none", "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
                                          ("foreign", "unable to get local issuer certificate")])
def test_smtp_refuses_missing_or_foreign_certificate_and_logs_why(gw: GatewayProcess, which, reason) -> None:
    info = gw.info
    box = {"cert": info["foreign"]["cert"], "key": info["foreign"]["key"]} if which == "foreign" else None
    with pytest.raises((smtplib.SMTPException, ssl.SSLError, ConnectionError)):
        with _smtp(info, box) as smtp:
            smtp.ehlo()
    log = gw.wait_log(reason)
    assert "smtp.tls_refused" in log


def test_smtp_refuses_an_envelope_sender_other_than_the_certificate(gw: GatewayProcess) -> None:
    info, ext = gw.info, gw.info["externals"][0]
    _, raw = _mail(BRIDGE, BRIDGE)
    with _smtp(info, ext) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(BRIDGE, [BRIDGE], raw)
    assert refused.value.smtp_code == 550 and b"5.7.1" in refused.value.smtp_error
    assert "mail_from_identity" in gw.wait_log("mail_from_identity")


def test_a_from_header_other_than_the_certificate_passes_with_the_authenticated_sender(gw: GatewayProcess) -> None:
    """Like a real operator: the From header may differ; the headers on top say whom the certificate proved,
    above any the sender wrote itself (the bridge is the one that refuses)."""
    info, ext = gw.info, gw.info["externals"][0]
    mid, raw = _mail(LAB, BRIDGE)
    raw = (f"Return-Path: <{LAB}>\r\nAuthentication-Results: mssante-gw.test; x509=pass smtp.mailfrom={LAB}\r\n"
           ).encode() + raw
    with _smtp(info, ext) as smtp:
        smtp.sendmail(ext["address"], [BRIDGE], raw)
    [got] = _wait_for(info, info["bridge"], lambda m: m["Message-ID"] == mid)
    assert got["From"] == LAB
    assert got.get_all("Return-Path")[0] == f"<{ext['address']}>"
    assert got.get_all("Authentication-Results")[0] == f"mssante-gw.test; x509=pass smtp.mailfrom={ext['address']}"
    assert "from_matches=False" in gw.wait_log("from_matches=False")


def test_smtp_refuses_to_relay_outside_its_domains(gw: GatewayProcess) -> None:
    info, bridge = gw.info, gw.info["bridge"]
    _, raw = _mail(BRIDGE, "someone@gmail.com")
    with _smtp(info, bridge) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(BRIDGE, ["someone@gmail.com"], raw)
    code, text = refused.value.recipients["someone@gmail.com"]
    assert code == 550 and b"relay refused" in text


def _report(msg: email.message.EmailMessage) -> tuple[dict, dict, str]:
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    headers = parts[2]
    assert headers.get_content_type() == "text/rfc822-headers"
    return dict(blocks[0].items()), dict(blocks[1].items()), headers.get_payload()


def test_success_dsn_comes_back_to_the_sender(gw: GatewayProcess) -> None:
    info, bridge = gw.info, gw.info["bridge"]
    to = "c.lefebvre@chu-demo.mssante.test"
    mid, raw = _mail(BRIDGE, to)
    envid = uuid.uuid4().hex
    with _smtp(info, bridge) as smtp:
        smtp.sendmail(BRIDGE, [to], raw, mail_options=["RET=HDRS", f"ENVID={envid}"],
                      rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{to}"])
    found = _wait_for(info, bridge, lambda m: m.get_content_type() == "multipart/report"
                      and envid in m.as_string())
    assert len(found) == 1
    dsn = found[0]
    assert dsn["From"] == "mailer-daemon@chu-demo.mssante.test"
    assert dsn["Return-Path"] == "<>", "a DSN travels with the null sender"
    assert dsn["Auto-Submitted"] == "auto-replied"
    per_message, per_rcpt, headers = _report(dsn)
    assert per_message["Original-Envelope-Id"] == envid
    assert per_rcpt["Action"] == "delivered" and per_rcpt["Status"] == "2.0.0"
    assert per_rcpt["Final-Recipient"] == f"rfc822; {to}"
    assert mid in headers
    assert any(m["Message-ID"] == mid for m in _inbox(info, info["externals"][0]))


def test_failure_dsn_for_an_unknown_mailbox_on_a_known_domain(gw: GatewayProcess) -> None:
    info, bridge = gw.info, gw.info["bridge"]
    to = "personne@chu-demo.mssante.test"
    mid, raw = _mail(BRIDGE, to)
    envid = uuid.uuid4().hex
    with _smtp(info, bridge) as smtp:
        smtp.sendmail(BRIDGE, [to], raw, mail_options=[f"ENVID={envid}"])  # no NOTIFY: failures only
    found = _wait_for(info, bridge, lambda m: m.get_content_type() == "multipart/report"
                      and envid in m.as_string())
    assert len(found) == 1
    _, per_rcpt, headers = _report(found[0])
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert "n'existe pas" in per_rcpt["Diagnostic-Code"]
    assert mid in headers


def test_ports_and_passwords_are_kept_and_ready_file_removed_on_stop() -> None:
    with running_gateway() as first:
        info = first.info
        root = first.workdir
        first.stop()
        assert not first.ready_file.exists()
        second = GatewayProcess(root)
        again = second.start()
        try:
            assert again["smtp"]["port"] == info["smtp"]["port"]
            assert again["imap"]["port"] == info["imap"]["port"]
            assert again["bridge"]["imap_password"] == info["bridge"]["imap_password"]
            assert json.loads(second.ready_file.read_text())["pid"] == second.process.pid
        finally:
            second.stop()
