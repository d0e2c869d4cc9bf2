"""A local MSSanté-like mail gateway: test PKI, Dovecot (IMAPS) and SMTPS with mutual TLS.

    python -m liaison.stack.mailgw --dir DIR --ready-file FILE

The SMTP server accepts a mail only when the client certificate's address is the envelope
sender (MAIL FROM); like a real operator, it lets the `From:` header differ and says whom it
authenticated in an `Authentication-Results` header (RFC 8601), for the bridge to compare.
It delivers through LMTP into Dovecot (which records `Return-Path: <MAIL FROM>`) and answers
RFC 3461 NOTIFY requests with RFC 3464 delivery status notifications.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import secrets
import signal
import smtplib
import ssl
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path

import structlog
from aiosmtpd.smtp import SMTP

from liaison.stack import port_free
from liaison.stack.dovecot import Dovecot, stop_stale
from liaison.stack.dsn import Outcome, compose_dsn
from liaison.stack.pki import TestPki
from liaison.stack.synapse import free_port

log = structlog.get_logger(__name__)

MAX_SIZE = 30 * 1024 * 1024
HOSTNAME = "mssante-gw.test"   # the SMTP greeting and the authserv-id of its Authentication-Results


@dataclass(frozen=True)
class Mailbox:
    address: str
    display_name: str
    role: str  # "bridge", "external" or "untrusted"

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


DEFAULT_MAILBOXES = (
    Mailbox("liaison@msp-demo.mssante.test", "MSP de démonstration", "bridge"),
    Mailbox("c.lefebvre@chu-demo.mssante.test", "Dr Camille Lefebvre (cardiologie, CHU de démonstration)",
            "external"),
    Mailbox("resultats@labo-demo.mssante.test", "Laboratoire de biologie de démonstration", "external"),
    Mailbox("inconnu@messagerie-ordinaire.test", "Expéditeur inconnu", "untrusted"),
)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    tmp.chmod(0o600)
    tmp.replace(path)


def bare(address: str) -> str:
    """The address without its `+detail`, lower-cased."""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def cert_identity(peercert: dict | None) -> str | None:
    """The client certificate's address: SAN rfc822Name, else CN."""
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        if kind == "email":
            return value.lower()
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value.lower()
    return None


def authentication_results(identity: str) -> bytes:
    """The header the gateway puts on top of an accepted mail: the certificate authenticated MAIL FROM."""
    return f"Authentication-Results: {HOSTNAME}; x509=pass smtp.mailfrom={identity}\r\n".encode()


def xtext_decode(value: str) -> str:
    """RFC 3461 xtext: `+XX` is the byte XX."""
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP plus the DSN extension (RFC 3461): keeps RET/ENVID/NOTIFY/ORCPT, case intact."""

    def _set_rset_state(self) -> None:
        super()._set_rset_state()
        self.dsn_mail: dict[str, str] = {}
        self.dsn_rcpt: dict[str, dict[str, str]] = {}

    @staticmethod
    def _split(arg: str | None, names: set[str]) -> tuple[str | None, dict[str, str]]:
        if not arg or ">" not in arg:
            return arg, {}
        cut = arg.rfind(">") + 1
        kept, found = [], {}
        for token in arg[cut:].split():
            key, eq, value = token.partition("=")
            if key.upper() in names and eq:
                found[key.upper()] = value
            else:
                kept.append(token)
        return " ".join([arg[:cut], *kept]), found

    async def smtp_MAIL(self, arg: str | None) -> None:
        arg, found = self._split(arg, {"RET", "ENVID"})
        had = self.envelope.mail_from if self.envelope else None
        await super().smtp_MAIL(arg)
        if self.envelope and self.envelope.mail_from and not had:
            self.dsn_mail = {k: xtext_decode(v) if k == "ENVID" else v.upper() for k, v in found.items()}

    async def smtp_RCPT(self, arg: str | None) -> None:
        arg, found = self._split(arg, {"NOTIFY", "ORCPT"})
        count = len(self.envelope.rcpt_tos) if self.envelope else 0
        await super().smtp_RCPT(arg)
        if self.envelope and len(self.envelope.rcpt_tos) > count:
            if "ORCPT" in found:
                found["ORCPT"] = xtext_decode(found["ORCPT"])
            if "NOTIFY" in found:
                found["NOTIFY"] = found["NOTIFY"].upper()
            self.dsn_rcpt[self.envelope.rcpt_tos[-1]] = found


class TlsGate(asyncio.Protocol):
    """Implicit TLS done by hand, so a refused handshake is logged with its reason."""

    def __init__(self, context: ssl.SSLContext, make_smtp) -> None:
        self.context, self.make_smtp = context, make_smtp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport), "a TCP server's transport reads and writes"
        transport.pause_reading()
        self.peer = transport.get_extra_info("peername")
        self.task = asyncio.get_running_loop().create_task(self._handshake(transport))  # keep a reference

    async def _handshake(self, transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(transport, self, self.context, server_side=True, ssl_handshake_timeout=10)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as exc:
            reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or type(exc).__name__
            log.warning("smtp.tls_refused", peer=str(self.peer), reason=str(reason), error=str(exc))
            transport.abort()
            return
        if tls is None:   # the connection closed during the handshake
            transport.abort()
            return
        smtp = self.make_smtp()
        tls.set_protocol(smtp)
        smtp.connection_made(tls)


class GatewayHandler:
    """The gateway's rules: identity = MAIL FROM, known domains only, LMTP delivery, DSNs."""

    def __init__(self, mailboxes: tuple[Mailbox, ...], lmtp_socket: Path) -> None:
        self.addresses = {m.address.lower() for m in mailboxes}
        self.domains = {m.domain.lower() for m in mailboxes}
        self.lmtp_socket = lmtp_socket

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-DSN", responses[-1]]

    async def handle_MAIL(self, server, session, envelope, address, options):
        identity = cert_identity(server.transport.get_extra_info("peercert"))
        if not address or address.lower() != identity:
            log.warning("smtp.refused", rule="mail_from_identity", identity=identity, mail_from=address)
            return f"550 5.7.1 L'expéditeur <{address}> ne correspond pas au certificat ({identity})"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.rpartition("@")[2].lower() not in self.domains:
            log.warning("smtp.refused", rule="relay", rcpt=address)
            return "550 5.7.1 relay refused"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        identity = cert_identity(server.transport.get_extra_info("peercert"))
        raw: bytes = envelope.original_content
        headers = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
        parsed = BytesHeaderParser(policy=default_policy).parsebytes(headers)
        froms = [a.lower() for _, a in getaddresses([str(v) for v in parsed.get_all("From", [])])]
        known = [r for r in envelope.rcpt_tos if bare(r) in self.addresses]
        stamped = authentication_results(identity) + raw
        try:
            await asyncio.to_thread(self._deliver, envelope.mail_from, [(r, stamped) for r in known])
        except (OSError, smtplib.SMTPException) as exc:
            log.error("smtp.lmtp_failed", error=type(exc).__name__, recipients=len(known))
            return "451 4.3.0 Remise locale impossible, réessayez plus tard"
        reports = self._reports(server, envelope, headers)
        if reports:
            try:
                await asyncio.to_thread(self._deliver, "", [(envelope.mail_from, r) for r in reports])
            except (OSError, smtplib.SMTPException) as exc:
                log.error("smtp.dsn_failed", error=type(exc).__name__)
        log.info("smtp.accepted", sender=envelope.mail_from, from_matches=froms == [identity],
                 delivered=len(known), unknown=len(envelope.rcpt_tos) - len(known), dsn=len(reports), size=len(raw))
        return "250 2.0.0 OK"

    def _reports(self, server: GatewaySMTP, envelope, headers: bytes) -> list[bytes]:
        reports = []
        for rcpt in envelope.rcpt_tos:
            params = server.dsn_rcpt.get(rcpt, {})
            notify = set(params.get("NOTIFY", "FAILURE").split(","))
            delivered = bare(rcpt) in self.addresses
            if (delivered and "SUCCESS" not in notify) or (not delivered and "FAILURE" not in notify):
                continue
            diagnostic = ("250 2.0.0 Message remis / message delivered" if delivered else
                          f"550 5.1.1 <{rcpt}>: la boîte aux lettres n'existe pas / mailbox does not exist")
            outcome = Outcome(rcpt, params.get("ORCPT"), delivered, diagnostic)
            reports.append(compose_dsn(sender=envelope.mail_from, outcome=outcome,
                                       envid=server.dsn_mail.get("ENVID"), headers=headers))
        return reports

    def _deliver(self, sender: str, items: list[tuple[str, bytes]]) -> None:
        if not items:
            return
        with smtplib.LMTP(str(self.lmtp_socket)) as lmtp:
            for rcpt, data in items:
                lmtp.sendmail(sender, [rcpt], data)


class MailGateway:
    """The whole gateway under `root`: `await start()` returns the ready description."""

    def __init__(self, root: Path, mailboxes: tuple[Mailbox, ...] = DEFAULT_MAILBOXES,
                 ready_file: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # Dovecot's unprivileged processes walk through it (without listing it)
        self.mailboxes = mailboxes
        self.ready_file = Path(ready_file).resolve() if ready_file else None
        self.pki = TestPki(self.root / "pki")
        stop_stale(self.root / "dovecot")  # before choosing ports: it may hold the IMAP one
        self.passwords = self._passwords()
        self.ports = self._ports()
        self.dovecot: Dovecot | None = None
        self.server: asyncio.AbstractServer | None = None

    def _passwords(self) -> dict[str, str]:
        path = self.root / "passwords.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        for m in self.mailboxes:
            known.setdefault(m.address, secrets.token_urlsafe(12))
        _write_json(path, known)
        return known

    def _ports(self) -> dict[str, int]:
        """Keep the ports from one run to the next when they are still free."""
        path = self.root / "ports.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        ports = {name: known[name] if name in known and port_free(known[name]) else free_port()
                 for name in ("smtp", "imap")}
        _write_json(path, ports)
        return ports

    def _server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        ctx.load_verify_locations(cafile=str(self.pki.ca_cert))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def start(self) -> dict:
        await asyncio.to_thread(self.pki.ensure)
        users = {m.address: self.passwords[m.address] for m in self.mailboxes}
        self.dovecot = Dovecot(self.root / "dovecot", self.pki.ca_cert, self.pki.server_cert,
                               self.pki.server_key, self.ports["imap"], users)
        await asyncio.to_thread(self.dovecot.start)
        handler = GatewayHandler(self.mailboxes, self.dovecot.lmtp_socket)
        ctx = self._server_context()
        loop = asyncio.get_running_loop()

        def make_smtp() -> GatewaySMTP:
            return GatewaySMTP(handler, data_size_limit=MAX_SIZE, hostname=HOSTNAME,
                               enable_SMTPUTF8=True, loop=loop)

        self.server = await loop.create_server(lambda: TlsGate(ctx, make_smtp), "127.0.0.1", self.ports["smtp"])
        ready = self.describe()
        if self.ready_file:
            _write_json(self.ready_file, ready)
        log.info("mailgw.ready", smtp=self.ports["smtp"], imap=self.ports["imap"], mailboxes=len(self.mailboxes))
        return ready

    def describe(self) -> dict:
        def box(m: Mailbox) -> dict:
            cert, key = self.pki.client(m.address)
            return {"address": m.address, "display_name": m.display_name, "cert": str(cert), "key": str(key),
                    "imap_user": m.address, "imap_password": self.passwords[m.address]}

        bridge = next(m for m in self.mailboxes if m.role == "bridge")
        return {
            "smtp": {"host": "127.0.0.1", "port": self.ports["smtp"]},
            "imap": {"host": "127.0.0.1", "port": self.ports["imap"]},
            "ca": str(self.pki.ca_cert),
            "bridge_address": bridge.address,
            "bridge": box(bridge),
            "externals": [box(m) for m in self.mailboxes if m.role == "external"],
            "untrusted": [box(m) for m in self.mailboxes if m.role == "untrusted"],
            "foreign": {"cert": str(self.pki.foreign_cert), "key": str(self.pki.foreign_key)},
            "pid": os.getpid(),
        }

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()  # open client connections are not waited for (3.12 would wait forever)
            await asyncio.wait([asyncio.ensure_future(self.server.wait_closed())], timeout=2)
            self.server = None
        if self.dovecot is not None:
            await asyncio.to_thread(self.dovecot.stop)
            self.dovecot = None
        if self.ready_file:
            self.ready_file.unlink(missing_ok=True)
        log.info("mailgw.stopped")


async def _serve(root: Path, ready_file: Path | None) -> None:
    gateway = MailGateway(root, ready_file=ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
        await stop.wait()
    finally:
        await gateway.stop()


def main(argv: list[str] | None = None) -> None:
    from liaison.logs import setup_logging
    from liaison.private import restrict_umask

    parser = argparse.ArgumentParser(description="Passerelle de messagerie MSSanté locale (tests)")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--log-file", default="", help="défaut : DIR/mailgw.log ; « - » : la sortie d'erreur seule")
    args = parser.parse_args(argv)
    restrict_umask()   # its passwords, keys and mailboxes are the owner's only (Dovecot's are set one by one)
    args.dir.mkdir(parents=True, exist_ok=True)
    setup_logging(file="" if args.log_file == "-" else args.log_file or str(args.dir / "mailgw.log"))
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: peers and addresses at info
    asyncio.run(_serve(args.dir, args.ready_file))


if __name__ == "__main__":
    main()
