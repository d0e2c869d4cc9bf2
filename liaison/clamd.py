"""The clamd protocol over a unix socket: scan bytes with zINSTREAM, check the daemon with zPING.

Nothing here raises to the caller for a clamd problem (socket missing, daemon stopped, timeout,
size limit, garbled answer): `scan` returns status "error" with a short detail that never carries
the file's content or name. Logs carry sizes and durations only.
"""
from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

CHUNK = 8 * 1024
_MAX_REPLY = 4096


@dataclass(frozen=True)
class ScanResult:
    status: str                  # clean | infected | error
    signature: str | None = None
    detail: str = ""


async def scan(socket_path: str, data: bytes, timeout: float = 10.0) -> ScanResult:
    """Have clamd scan `data`; never raises for clamd problems (status "error" instead)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            result = await _instream(socket_path, data)
    except TimeoutError:
        result = ScanResult("error", detail=f"clamd n'a pas répondu en {timeout:g} s")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
        result = ScanResult("error", detail=f"clamd injoignable ({type(err).__name__})")
    ms = round((time.monotonic() - started) * 1000, 1)
    if result.status == "error":
        log.warning("clamd.scan_failed", size=len(data), ms=ms, detail=result.detail)
    else:
        log.info("clamd.scanned", size=len(data), ms=ms, status=result.status)
    return result


async def _instream(socket_path: str, data: bytes) -> ScanResult:
    reader, writer = await asyncio.open_unix_connection(socket_path)
    try:
        try:
            writer.write(b"zINSTREAM\0")
            view = memoryview(data)
            for start in range(0, len(view), CHUNK):
                chunk = view[start:start + CHUNK]
                writer.write(struct.pack(">I", len(chunk)) + chunk)
                await writer.drain()
            writer.write(struct.pack(">I", 0))
            await writer.drain()
        except ConnectionError:
            pass   # clamd may stop reading early (size limit) after writing why: read it below
        return parse_reply(await _reply(reader))
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _reply(reader: asyncio.StreamReader) -> bytes:
    reply = bytearray()
    while not reply.endswith(b"\0") and len(reply) < _MAX_REPLY:
        piece = await reader.read(_MAX_REPLY)
        if not piece:
            break
        reply += piece
    return bytes(reply)


def parse_reply(reply: bytes) -> ScanResult:
    """clamd's answer to INSTREAM: `stream: OK`, `stream: <Name> FOUND`, `<why> ERROR`."""
    text = reply.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    body = text[len("stream:"):].strip() if text.startswith("stream:") else text
    if body == "OK":
        return ScanResult("clean", detail="OK")
    if body.endswith(" FOUND"):
        return ScanResult("infected", signature=body[:-len(" FOUND")].strip() or "inconnu", detail="FOUND")
    if body.endswith("ERROR"):
        return ScanResult("error", detail=f"clamd : {body[:200]}")
    if not text:
        return ScanResult("error", detail="clamd a fermé la connexion sans répondre")
    return ScanResult("error", detail="réponse inattendue de clamd")


async def ping(socket_path: str, timeout: float = 2.0) -> bool:
    """Whether clamd answers PONG on its socket; never raises."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(socket_path)
            try:
                writer.write(b"zPING\0")
                await writer.drain()
                return (await _reply(reader)).split(b"\0", 1)[0].strip() == b"PONG"
            finally:
                writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        return False
