"""The bridge's only IMAP speaker: the applicative mailbox's inbox, over implicit TLS.

aioimaplib has no STARTTLS, so the connection is TLS from the first byte, carrying the
mailbox's client certificate. New mail is awaited with IDLE (Dovecot's floor: ~0.5 s).
"""
from __future__ import annotations

import asyncio
import base64
import re
import ssl
from dataclasses import dataclass

import aioimaplib
import structlog

log = structlog.get_logger(__name__)

_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(.*?UID (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_PUSHED = re.compile(rb"^\d+ (EXISTS|RECENT)\b")
_FETCH_UID = re.compile(rb"^\d+ FETCH \(.*?\bUID (\d+)")
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    ca_file: str
    cert_file: str
    key_file: str
    user: str
    password: str
    inbox: str = "INBOX"
    done: str = "Traités"
    timeout: float = 30.0
    # Bigger than this by RFC822.SIZE: only its header is fetched. A batch also fetches at most this many bytes of
    # bodies together (always at least one mail): 32 mails of 25 MB never sit in memory at once.
    max_mail_bytes: int = 25 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    uidvalidity: int
    uid: int
    raw: bytes
    size: int = 0           # RFC822.SIZE, as the server announced it (0: not asked)
    complete: bool = True   # False: over max_mail_bytes, `raw` is its header block only (BODY.PEEK[HEADER])


class _QuietProtocol(aioimaplib.IMAP4ClientProtocol):
    """aioimaplib's protocol without its debug line on every chunk received (`log.debug('Received : %s' % d)`, the
    formatting done whatever the log level): 0.3 s of CPU and 80 MB of text for a 20 MB mail, and the mail itself in
    the log when debugging. The rest is aioimaplib's own data_received."""

    def data_received(self, d: bytes) -> None:
        try:
            pending, command = self.incomplete_line, self.current_command  # type: ignore[has-type]  # aioimaplib
            self._handle_responses(pending + d, self._handle_line, command)
            self.incomplete_line = b""
            self.current_command = None
        except aioimaplib.IncompleteRead as incomplete:
            self.current_command = incomplete.cmd
            self.incomplete_line = incomplete.data


class ImapError(Exception):
    """An IMAP failure, as a French sentence (with the server's words when it gave some)."""


def mailbox_name(name: str) -> str:
    """RFC 3501 modified UTF-7, quoted: "Traités" -> "Trait&AOk-s"."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return '"' + "".join(out).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_fetch(lines: list, uidvalidity: int) -> list[Fetched]:
    found, uid = [], None
    for line in lines:
        if isinstance(line, bytearray) and uid is not None:
            found.append(Fetched(uidvalidity, uid, bytes(line)))
            line.clear()   # aioimaplib may keep the response until its next command: not a second copy of the mail
            uid = None
            continue
        match = _FETCH_HEAD.match(bytes(line))
        if match and bytes(line).rstrip().endswith(b"}"):
            uid = int(match.group(1))
    return sorted(found, key=lambda f: f.uid)


def _text(response) -> str:
    return b" ".join(bytes(x) for x in response.lines if not isinstance(x, bytearray)).decode(errors="replace")


class ImapClient:
    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._imap: aioimaplib.IMAP4_SSL | None = None
        self._uidvalidity = 0
        self._last_uid = 0

    @property
    def uidvalidity(self) -> int:
        return self._uidvalidity

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.settings.ca_file)
        ctx.load_cert_chain(self.settings.cert_file, self.settings.key_file)
        return ctx

    def _client(self) -> aioimaplib.IMAP4_SSL:
        if self._imap is None:
            raise ImapError("La connexion IMAP n'est pas ouverte.")
        return self._imap

    async def _ok(self, what: str, call) -> aioimaplib.Response:
        try:
            response = await call
        except (aioimaplib.AioImapException, OSError, asyncio.TimeoutError) as exc:
            log.warning("imap.broken", step=what, error=type(exc).__name__)
            raise ImapError(f"La connexion IMAP au serveur MSSanté a échoué ({what}).") from exc
        if response.result != "OK":
            raise ImapError(f"Le serveur IMAP refuse l'opération « {what} » : {_text(response)}")
        return response

    async def connect(self) -> None:
        """TLS, LOGIN, SELECT the inbox; create the `done` folder when missing."""
        await self.close()
        s = self.settings
        try:
            self._imap = aioimaplib.IMAP4_SSL(host=s.host, port=s.port, ssl_context=self._context(),
                                              timeout=s.timeout)
            self._imap.protocol.__class__ = _QuietProtocol   # before its connection is made (a task, not yet run)
            await self._imap.wait_hello_from_server()
        except (aioimaplib.AioImapException, OSError, asyncio.TimeoutError) as exc:
            self._imap = None
            if isinstance(exc, ssl.SSLError):
                log.warning("imap.tls_refused", host=s.host, port=s.port,
                            reason=getattr(exc, "verify_message", None) or exc.reason)
            else:
                log.warning("imap.connect_failed", host=s.host, port=s.port, error=type(exc).__name__)
            raise ImapError(f"Le serveur IMAP MSSanté est injoignable ({exc}).") from exc
        imap = self._imap
        response = await imap.login(s.user, s.password)
        if response.result != "OK":
            log.warning("imap.login_refused", host=s.host, port=s.port)
            await self.close()
            raise ImapError(f"Le serveur IMAP refuse la connexion de la boîte : {_text(response)}")
        try:  # the capabilities after login (MOVE, UIDPLUS): aioimaplib only asked before
            await asyncio.wait_for(imap.protocol.capability(), s.timeout)
        except (aioimaplib.AioImapException, OSError, asyncio.TimeoutError) as exc:
            raise ImapError("La connexion IMAP au serveur MSSanté a échoué (capability).") from exc
        listed = await self._ok("list", imap.list('""', mailbox_name(s.done)))
        if len(listed.lines) < 2:  # only the tagged "List completed": no such folder
            await self._ok("create", imap.create(mailbox_name(s.done)))
            log.info("imap.folder_created")
        await self._select()
        log.info("imap.connected", uidvalidity=self._uidvalidity, idle=imap.has_capability("IDLE"))

    async def _select(self) -> None:
        response = await self._ok("select", self._client().select(mailbox_name(self.settings.inbox)))
        for line in response.lines:
            match = _UIDVALIDITY.search(bytes(line))
            if match:
                self._uidvalidity = int(match.group(1))

    async def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            if imap.has_pending_idle():
                imap.idle_done()
            await asyncio.wait_for(imap.logout(), 5)
        except (aioimaplib.AioImapException, OSError, asyncio.TimeoutError):
            pass
        transport = imap.protocol.transport
        if transport is not None:
            transport.close()

    async def _uids(self, criteria: str) -> list[int]:
        response = await self._ok("search", self._client().uid_search(criteria, charset=None))
        uids: list[int] = []
        for line in response.lines[:-1]:  # the last line is the tagged completion
            words = bytes(line).split()
            if words and words[0] == b"SEARCH":
                words = words[1:]
            if all(w.isdigit() for w in words):
                uids += [int(w) for w in words]
        return sorted(uids)

    async def _fetch(self, uids: list[int]) -> list[Fetched]:
        if not uids:
            return []
        uid_set = ",".join(str(u) for u in uids)
        response = await self._ok("fetch", self._client().uid("fetch", uid_set, "(UID BODY.PEEK[])"))
        return _parse_fetch(response.lines, self._uidvalidity)

    async def _sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each message, asked before any body is fetched."""
        if not uids:
            return {}
        response = await self._ok("fetch", self._client().uid("fetch", ",".join(map(str, uids)), "(UID RFC822.SIZE)"))
        sizes: dict[int, int] = {}
        for line in response.lines:
            if isinstance(line, bytearray):
                continue
            uid, size = _FETCH_UID.match(bytes(line)), _FETCH_SIZE.search(bytes(line))
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def fetch_all(self, limit: int = 200) -> list[Fetched]:
        """The inbox's messages by UID order (at most `limit`), without setting \\Seen: each one's size first,
        then the whole bytes of those within max_mail_bytes (the first ones whose sizes add up to at most that,
        the others wait for the next call) and only the header block of those over it (`complete` False)."""
        uids = (await self._uids("ALL"))[:limit]
        sizes = await self._sizes(uids)
        whole: list[int] = []
        heads: list[int] = []
        budget = self.settings.max_mail_bytes
        for uid in uids:
            size = sizes.get(uid, 0)
            if size > self.settings.max_mail_bytes:
                heads.append(uid)
                continue
            if whole and size > budget:
                break
            whole.append(uid)
            budget -= size
        uids = sorted(whole + heads)
        fetched = await self._fetch(whole)
        if heads:
            response = await self._ok("fetch", self._client().uid("fetch", ",".join(map(str, heads)),
                                                                  "(UID BODY.PEEK[HEADER])"))
            fetched += [Fetched(f.uidvalidity, f.uid, f.raw, complete=False)
                        for f in _parse_fetch(response.lines, self._uidvalidity)]
            log.info("imap.too_big", count=len(heads), max_bytes=self.settings.max_mail_bytes)
        fetched = sorted((Fetched(f.uidvalidity, f.uid, f.raw, sizes.get(f.uid, 0), f.complete) for f in fetched),
                         key=lambda f: f.uid)
        if uids:
            self._last_uid = max(self._last_uid, uids[-1])
        log.info("imap.fetched", count=len(fetched), bytes=sum(len(f.raw) for f in fetched))
        return fetched

    async def wait_for_change(self, timeout: float) -> bool:
        """IDLE until new mail or `timeout`; True when something arrived (always True when polling)."""
        imap = self._client()
        if any(u > self._last_uid for u in await self._uids(f"UID {self._last_uid + 1}:*")):
            return True  # arrived since the last fetch_all (maybe during it): IDLE would not say it again
        if not imap.has_capability("IDLE"):
            await asyncio.sleep(min(timeout, 1))
            return True
        queue = imap.protocol.idle_queue
        while not queue.empty():  # pushes left over from an earlier IDLE
            queue.get_nowait()
        try:
            # aioimaplib's own IDLE timer is pushed beyond ours: it would leave a stale stop in the queue.
            idle = await imap.idle_start(timeout=timeout + 60)
            changed = False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not changed and loop.time() < deadline:
                try:
                    pushed = await imap.wait_server_push(timeout=max(deadline - loop.time(), 0.01))
                except asyncio.TimeoutError:
                    break
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                changed = any(_PUSHED.match(bytes(line)) for line in pushed)
            imap.idle_done()
            await asyncio.wait_for(idle, self.settings.timeout)
        except (aioimaplib.AioImapException, OSError, asyncio.TimeoutError) as exc:
            log.warning("imap.broken", step="idle", error=type(exc).__name__)
            raise ImapError("La connexion IMAP au serveur MSSanté a été coupée pendant l'attente.") from exc
        return changed

    async def move_to_done(self, *uids: int) -> None:
        """Move messages (one UID MOVE for all of them) from the inbox to the `done` folder."""
        if not uids:
            return
        imap = self._client()
        target = mailbox_name(self.settings.done)
        which = ",".join(str(u) for u in sorted(uids))
        if imap.has_capability("MOVE"):
            await self._ok("move", imap.uid("move", which, target))
        else:
            await self._ok("copy", imap.uid("copy", which, target))
            await self._ok("store", imap.uid("store", which, "+FLAGS.SILENT", "(\\Deleted)"))
            await self._ok("expunge", imap.uid("expunge", which))
        log.info("imap.moved", count=len(uids))

    async def fetch_folder(self, folder: str) -> list[Fetched]:
        """Every message of `folder` (tests, diagnostics); the inbox is selected again after."""
        response = await self._ok("select", self._client().select(mailbox_name(folder)))
        validity = next((int(m.group(1)) for m in (_UIDVALIDITY.search(bytes(x)) for x in response.lines) if m), 0)
        try:
            uids = await self._uids("ALL")
            if not uids:
                return []
            fetched = await self._ok("fetch", self._client().uid("fetch", ",".join(map(str, uids)),
                                                                 "(UID BODY.PEEK[])"))
            return _parse_fetch(fetched.lines, validity)
        finally:
            await self._select()
