"""The bridge's only SMTP speaker: submission to the MSSanté operator over mutual TLS.

Implicit TLS with the applicative mailbox's certificate; asks for DSNs (RFC 3461) when the
server offers them; one connection reused, reopened once when it broke.
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import aiosmtplib
import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    ca_file: str
    cert_file: str
    key_file: str
    timeout: float = 30.0


class SmtpError(Exception):
    """A refused or failed submission; `permanent` means retrying the same mail is useless."""

    def __init__(self, sentence: str, *, code: int | None = None, permanent: bool = False,
                 server_text: str = "") -> None:
        self.code, self.permanent, self.server_text = code, permanent, server_text
        said = " ".join(part for part in (str(code) if code else "", server_text) if part)
        super().__init__(f"{sentence} (serveur : {said})" if said else sentence)


def xtext(value: str) -> str:
    """RFC 3461 xtext: `+XX` for '+', '=' and anything outside printable ASCII."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
                   for c in value)


def tls_reason(exc: BaseException) -> str | None:
    """The TLS reason behind an error, if there is one (alert name, verify message)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return getattr(seen, "verify_message", None) or seen.reason or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _closed_at_handshake(exc: BaseException) -> str | None:
    # Under TLS 1.3 the server checks our certificate after the client's side of the handshake;
    # a server that refuses it may just close, so the greeting never comes.
    if "Unexpected EOF" in str(exc) or "Connection lost" in str(exc):
        return "connexion fermée avant l'accueil SMTP (certificat client refusé ?)"
    return None


def _response_error(exc: aiosmtplib.SMTPResponseException, sentence: str) -> SmtpError:
    return SmtpError(sentence, code=exc.code, permanent=500 <= exc.code < 600, server_text=exc.message)


class SmtpClient:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.settings.ca_file)
        ctx.load_cert_chain(self.settings.cert_file, self.settings.key_file)
        return ctx

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=True, tls_context=self._context(),
                               timeout=s.timeout)
        try:
            await smtp.connect()
            await smtp.ehlo()
        except aiosmtplib.SMTPResponseException as exc:
            raise _response_error(exc, "Le serveur MSSanté refuse la connexion.") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = tls_reason(exc) or _closed_at_handshake(exc)
            if reason:
                log.warning("smtp.tls_refused", host=s.host, port=s.port, reason=reason)
                raise SmtpError("La connexion TLS au serveur MSSanté a été refusée (certificat ?).",
                                server_text=reason) from exc
            log.warning("smtp.connect_failed", host=s.host, port=s.port, error=type(exc).__name__)
            raise SmtpError("Le serveur MSSanté est injoignable.", server_text=str(exc)) from exc
        log.info("smtp.connected", host=s.host, port=s.port, dsn=smtp.supports_extension("dsn"))
        return smtp

    async def send(self, message: bytes, *, sender: str, recipients: list[str], envid: str | None = None,
                   notify: bool = True) -> None:
        """Submit one mail to all `recipients`, or to none (a refused recipient cancels the mail)."""
        if not recipients:
            raise SmtpError("Aucun destinataire pour ce message.", permanent=True)
        async with self._lock:
            fresh = self._smtp is None or not self._smtp.is_connected
            if fresh or self._smtp is None:
                self._smtp = await self._connect()
            try:
                await self._transaction(self._smtp, message, sender, recipients, envid, notify)
            except _Broken as broken:
                await self._drop()
                if fresh or broken.data_sent:
                    raise SmtpError("La connexion au serveur MSSanté a été coupée.",
                                    server_text=str(broken.__cause__ or "")) from broken.__cause__
                log.info("smtp.reconnect")
                self._smtp = await self._connect()
                try:
                    await self._transaction(self._smtp, message, sender, recipients, envid, notify)
                except _Broken as again:
                    await self._drop()
                    raise SmtpError("La connexion au serveur MSSanté a été coupée.",
                                    server_text=str(again.__cause__ or "")) from again.__cause__

    async def _transaction(self, smtp: aiosmtplib.SMTP, message: bytes, sender: str, recipients: list[str],
                           envid: str | None, notify: bool) -> None:
        dsn = notify and smtp.supports_extension("dsn")
        mail_options = ["RET=HDRS", *([f"ENVID={xtext(envid)}"] if envid else [])] if dsn else []
        data_sent = False
        try:
            try:
                await smtp.mail(sender, options=mail_options)
            except aiosmtplib.SMTPResponseException as exc:
                await self._rset(smtp)
                raise _response_error(exc, "Le serveur MSSanté refuse l'expéditeur.") from exc
            refused: list[aiosmtplib.SMTPResponseException] = []
            for rcpt in recipients:
                options = ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{xtext(rcpt)}"] if dsn else []
                try:
                    await smtp.rcpt(rcpt, options=options)
                except aiosmtplib.SMTPResponseException as exc:
                    refused.append(exc)
            if refused:
                await self._rset(smtp)
                first = refused[0]
                log.warning("smtp.rcpt_refused", refused=len(refused), recipients=len(recipients), code=first.code)
                raise _response_error(first, f"Le serveur MSSanté refuse {len(refused)} destinataire(s) ; "
                                             "le message n'a pas été envoyé.")
            data_sent = True
            try:
                await smtp.data(message)
            except aiosmtplib.SMTPResponseException as exc:
                await self._rset(smtp)
                raise _response_error(exc, "Le serveur MSSanté refuse le message.") from exc
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, ConnectionError, OSError) as exc:
            raise _Broken(data_sent) from exc
        log.info("smtp.sent", recipients=len(recipients), dsn=dsn, size=len(message))

    async def _rset(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self._drop()

    async def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def close(self) -> None:
        async with self._lock:
            if self._smtp is not None and self._smtp.is_connected:
                try:
                    await self._smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    pass
            await self._drop()


class _Broken(Exception):
    """The connection broke mid-transaction; `data_sent` means the mail may have gone."""

    def __init__(self, data_sent: bool) -> None:
        super().__init__("connection broken")
        self.data_sent = data_sent
