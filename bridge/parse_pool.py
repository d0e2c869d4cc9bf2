"""Mails parsed off the event loop, in worker processes with a hard deadline and a memory ceiling.

A thread would keep the appservice, the outbox and IMAP answering, but it cannot be bounded: measured
with bridge.mail_in.parse_mail, a 5 MB HTML-only mail cost 4.5 s of CPU and 220 MB (still ~0.5 s per MB
of HTML now), and before the raw-byte checks (bridge.mail_guard) one `From:` of encoded words cost 7.7 s
and 2.9 GB; what the checks do not foresee, the parser may still make costly; a thread that
runs past its deadline goes on holding that memory and the CPU, and its memory is the bridge's. A worker
process is killed at the deadline and lives under its own address-space limit (RLIMIT_AS): a mail that
would need more is refused (`too_complex`), the bridge itself never grows for it. A worker that dies
of something else (signal, crash in a C extension) is replaced, and the mail counts as having broken
the bridge once (bridge.inbound's durable poison counter).

The same workers read a trusted sender's IHE_XDM.ZIP (bridge.xdm.read_xdm: its METADATA.XML and CDA documents
parsed, up to 50 MB decompressed), asked by the judge stage once the mail's sender is known and trusted: an archive
past the deadline or the ceiling is refused (`xdm_too_complex`) like a mail, and the bridge never holds its trees.

Workers are fresh interpreters (`python -m bridge.parse_pool`, importing bridge.mail_in and bridge.xdm only: ~30 MB,
no copy of the bridge's sockets, threads, keys or environment), started lazily and reused; what to read (a kind, then
the bytes) goes down a socket pair and what was read comes back pickled, each in one length-prefixed frame.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pickle
import resource
import socket
import struct
import subprocess
import sys
from typing import TypeVar

import structlog

from bridge.mail_in import InboundMail, MailLimits, MailRejected, parse_mail
from bridge.xdm import XdmError, XdmLimits, XdmPackage, read_xdm
from liaison import memory

log = structlog.get_logger(__name__)

DEADLINE_S = 15.0              # wall clock for one mail, transfer included (a worker's start-up is not counted)
START_S = 30.0                 # a new worker's start-up (a fresh interpreter's imports), on a loaded machine
READY = b"ready"
WORKERS = 2
_TRIM_AFTER = 1024 * 1024      # a worker gives its heap back after a mail this big (and after any archive)
MAIL, XDM = b"M", b"X"         # what a worker is asked to read: a raw mail, an IHE_XDM.ZIP
_TOO_COMPLEX = ("too_complex",)
XDM_TOO_COMPLEX = ("La lecture de l'archive IHE_XDM a demandé trop de temps ou de mémoire : elle a été refusée par "
                   "précaution. Demandez à l'expéditeur de la renvoyer plus simplement.")
T = TypeVar("T")


class ParserCrashed(RuntimeError):
    """The worker parsing a mail died (not at our deadline): the mail may be what killed it."""


def memory_ceiling(limits: MailLimits) -> int:
    """A worker's address space: parsing needs ~12 times the mail's size at worst (20 MB mail: 250 MB)."""
    return max(512 * 1024 * 1024, 16 * limits.max_bytes)


_HEADER = struct.Struct("!Q")


def send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(_HEADER.pack(len(data)))
    sock.sendall(data)


def recv_frame(sock: socket.socket, limit: int) -> bytearray:
    """One frame, read straight into a buffer of its size (multiprocessing's Connection grows a BytesIO: twice the
    memory of a 20 MB mail for a moment). EOFError when the other end is gone or announces more than `limit`."""
    size = _HEADER.unpack(_recv_exactly(sock, bytearray(_HEADER.size)))[0]
    if size > limit:
        raise EOFError(f"trame de {size} octets annoncée")
    return _recv_exactly(sock, bytearray(size))


def _recv_exactly(sock: socket.socket, buf: bytearray) -> bytearray:
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = sock.recv_into(view[got:])
        if not n:
            raise EOFError("fin de la connexion")
        got += n
    return buf


def _read(kind: bytes, data: bytes, limits: MailLimits, homeserver: str, xdm_limits: XdmLimits) -> tuple:
    """("ok", the InboundMail or XdmPackage), ("refused", code, reason), or ("too_complex",) out of memory."""
    try:
        if kind == XDM:
            return ("ok", read_xdm(data, xdm_limits))
        return ("ok", parse_mail(data, limits, homeserver))
    except (MailRejected, XdmError) as err:
        return ("refused", err.code, err.reason)
    except MemoryError:
        return _TOO_COMPLEX


def _serve(sock: socket.socket, limits: MailLimits, homeserver: str, ceiling: int, xdm_limits: XdmLimits) -> None:
    """A worker's loop: a kind and its bytes in, what `_read` answers out, until the socket closes."""
    memory.limit_arenas(1)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    send_frame(sock, READY)   # imported and set up: from now on, a mail's deadline is its own
    while True:
        try:
            kind = bytes(recv_frame(sock, 1))
            raw = bytes(recv_frame(sock, limits.max_bytes))
        except (EOFError, OSError):
            return
        except MemoryError:   # the mail itself does not fit: say so, and leave (the rest of it is still unread)
            send_frame(sock, pickle.dumps(_TOO_COMPLEX))
            return
        answer: tuple | None = _read(kind, raw, limits, homeserver, xdm_limits)
        size, raw = len(raw), b""
        try:
            try:
                data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            except MemoryError:   # what was read fits, its pickled copy does not
                data = pickle.dumps(_TOO_COMPLEX)
            answer = None
            send_frame(sock, data)
        except OSError:
            return
        data = b""
        if size > _TRIM_AFTER or kind == XDM:   # an archive's few KB may have decompressed to 50 MB
            memory.trim()


class _Worker:
    """One worker: `python -m bridge.parse_pool` on one end of a socket pair (not multiprocessing's spawn, which
    imports the parent's main script again in the child and fails when that script is not guarded)."""

    def __init__(self, limits: MailLimits, homeserver: str, ceiling: int, xdm_limits: XdmLimits) -> None:
        ours, theirs = socket.socketpair()
        settings = json.dumps({"limits": dataclasses.asdict(limits), "homeserver": homeserver, "ceiling": ceiling,
                               "xdm_limits": dataclasses.asdict(xdm_limits)})
        # No secret of the bridge's environment (passwords, keys) for the process that reads hostile bytes.
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
               "LANG": "C.UTF-8"}
        try:
            self.process = subprocess.Popen([sys.executable, "-m", "bridge.parse_pool", str(theirs.fileno()), settings],
                                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=True)   # the terminal's Ctrl-C is the bridge's
        finally:
            theirs.close()
        self.sock = ours
        # the mail decoded (text, HTML, attachments), or an archive's documents decompressed
        self.answer_limit = max(3 * limits.max_bytes, xdm_limits.max_total_bytes) + 16 * 1024 * 1024
        try:   # wait until it is ready: its imports must not eat the first mail's deadline
            ours.settimeout(START_S)
            if bytes(recv_frame(ours, len(READY))) != READY:
                raise EOFError("le processus de lecture n'a pas dit qu'il était prêt")
            ours.settimeout(None)
        except (EOFError, OSError) as err:
            self.kill()
            raise ParserCrashed(f"le processus de lecture du courriel n'a pas démarré ({err})") from err

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, kind: bytes, raw: bytes) -> tuple:
        """Blocking: runs in a thread. EOFError/OSError when the worker is gone."""
        send_frame(self.sock, kind)
        send_frame(self.sock, raw)
        return pickle.loads(recv_frame(self.sock, self.answer_limit))

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.sock.close()


class _TooComplex(Exception):
    """Past the deadline, or out of the worker's memory."""


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code)
        self.code, self.reason = code, reason


class MailParser:
    """`await parse(raw)`: parse_mail in a worker process; MailRejected as parse_mail raises it, plus
    `too_complex` past the deadline or the memory ceiling. `await read_xdm(archive)`: read_xdm in a worker; XdmError
    as read_xdm raises it, plus `xdm_too_complex`. ParserCrashed when the worker died otherwise."""

    def __init__(self, limits: MailLimits, homeserver: str, workers: int = WORKERS,
                 deadline: float = DEADLINE_S, ceiling: int | None = None,
                 xdm_limits: XdmLimits = XdmLimits()) -> None:
        self.limits, self.homeserver, self.deadline, self.xdm_limits = limits, homeserver, deadline, xdm_limits
        self.ceiling = ceiling or memory_ceiling(limits)
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()

    async def parse(self, raw: bytes) -> InboundMail:
        try:
            return await self._ask(MAIL, raw, InboundMail)
        except _Refused as refused:
            raise MailRejected(refused.code, refused.reason) from None
        except _TooComplex:
            raise MailRejected.of("too_complex") from None

    async def read_xdm(self, archive: bytes) -> XdmPackage:
        try:
            return await self._ask(XDM, archive, XdmPackage)
        except _Refused as refused:
            raise XdmError(refused.code, refused.reason) from None
        except _TooComplex:
            raise XdmError("xdm_too_complex", XDM_TOO_COMPLEX) from None

    async def _ask(self, kind: bytes, data: bytes, expected: type[T]) -> T:
        """What a worker read of `data`, checked to be an `expected`; _Refused, _TooComplex or ParserCrashed."""
        what = "xdm" if kind == XDM else "mail"
        async with self._slots:
            worker = await self._worker()
            self._busy.add(worker)
            try:
                answer = await asyncio.wait_for(asyncio.to_thread(worker.ask, kind, data), self.deadline)
            except asyncio.TimeoutError:
                await asyncio.to_thread(worker.kill)
                log.warning("mail.parse_deadline", what=what, seconds=self.deadline, size=len(data))
                raise _TooComplex() from None
            except (EOFError, OSError) as err:
                await asyncio.to_thread(worker.kill)
                code = worker.process.returncode
                log.warning("mail.parser_died", what=what, exitcode=code, size=len(data))
                raise ParserCrashed(f"le processus de lecture du courriel s'est arrêté (code {code})") from err
            except BaseException:   # cancelled (the bridge stops): the worker may be mid-mail, never reuse it
                worker.kill()
                raise
            finally:
                self._busy.discard(worker)
            if answer == _TOO_COMPLEX:   # it ran out of memory: a fresh one for the next mail
                await asyncio.to_thread(worker.kill)
            else:
                self._idle.append(worker)
        if answer == _TOO_COMPLEX:
            log.warning("mail.parse_memory", what=what, size=len(data))
            raise _TooComplex()
        if answer[0] == "refused":
            raise _Refused(answer[1], answer[2])
        if answer[0] != "ok" or not isinstance(answer[1], expected):   # never a worker's word taken untyped
            raise ParserCrashed(f"le processus de lecture a rendu autre chose qu'attendu ({type(answer[1]).__name__})")
        return answer[1]

    async def _worker(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                return worker
            worker.kill()   # died while idle (killed from outside): not this mail's doing
        return await asyncio.to_thread(_Worker, self.limits, self.homeserver, self.ceiling, self.xdm_limits)

    def pids(self) -> list[int]:
        """The live workers' process ids (for measures: their CPU and memory are the bridge's)."""
        return [w.pid for w in [*self._idle, *self._busy]]

    def close(self) -> None:
        for worker in [*self._idle, *self._busy]:
            worker.kill()
        self._idle.clear()


if __name__ == "__main__":   # a worker: python -m bridge.parse_pool <fd> <settings as JSON>
    _settings = json.loads(sys.argv[2])
    _serve(socket.socket(fileno=int(sys.argv[1])), MailLimits(**_settings["limits"]), _settings["homeserver"],
           _settings["ceiling"], XdmLimits(**_settings["xdm_limits"]))
