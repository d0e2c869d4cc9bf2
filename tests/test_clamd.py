"""liaison.clamd against a real clamd (EICAR signature only, no internet): verdicts, and no exception ever."""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time

import pytest

from liaison.clamd import ScanResult, parse_reply, ping, scan
from tests.support.clamd import EICAR, REPORTED, running_clamd

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def clamd():
    with running_clamd() as daemon:
        yield daemon


async def test_eicar_is_infected_with_the_signature_name(clamd):
    result = await scan(clamd.socket_path, EICAR)
    assert result == ScanResult("infected", REPORTED, "FOUND")


async def test_eicar_inside_a_bigger_stream_is_not_matched_by_its_hash(clamd):
    # A hash signature matches the whole file only: documents the limit of the test database.
    assert (await scan(clamd.socket_path, PDF + EICAR)).status == "clean"


async def test_a_small_pdf_is_clean(clamd):
    assert await scan(clamd.socket_path, PDF) == ScanResult("clean", None, "OK")


async def test_an_empty_file_is_clean(clamd):
    assert (await scan(clamd.socket_path, b"")).status == "clean"


async def test_ten_mib_is_clean_and_quick(clamd):
    blob = b"%PDF-1.7\n" + os.urandom(10 * 1024 * 1024)
    started = time.monotonic()
    result = await scan(clamd.socket_path, blob, timeout=60)
    elapsed = time.monotonic() - started
    print(f"clamd: 10 MiB scanned in {elapsed * 1000:.0f} ms")
    assert result.status == "clean" and elapsed < 30


async def test_concurrent_scans(clamd):
    results = await asyncio.gather(*(scan(clamd.socket_path, EICAR if i % 2 else PDF) for i in range(10)))
    assert [r.status for r in results] == ["clean", "infected"] * 5


async def test_ping(clamd):
    assert await ping(clamd.socket_path) is True
    assert await ping("/nonexistent/clamd.sock") is False


async def test_a_stopped_clamd_is_an_error_not_an_exception():
    with running_clamd() as daemon:
        assert (await scan(daemon.socket_path, PDF)).status == "clean"
        daemon.stop()
        result = await scan(daemon.socket_path, b"%PDF-secret content of Mme D.")
        assert result.status == "error" and result.signature is None
        assert "secret" not in result.detail and "Mme" not in result.detail
        assert await ping(daemon.socket_path) is False


async def test_no_socket_is_an_error():
    result = await scan("/nonexistent/clamd.sock", PDF)
    assert result.status == "error" and "injoignable" in result.detail


@pytest.fixture
def sock_path():
    """A short unix socket path (pytest's tmp_path can pass the 108-byte limit), removed afterwards."""
    root = tempfile.mkdtemp(prefix="fakeclamd-", dir="/tmp")
    yield os.path.join(root, "s")
    shutil.rmtree(root, ignore_errors=True)


async def test_a_silent_clamd_times_out(sock_path):
    async def silent(reader, writer):
        await reader.read()   # never answers
    path, server = sock_path, await asyncio.start_unix_server(silent, sock_path)
    async with server:
        started = time.monotonic()
        result = await scan(path, PDF * 1000, timeout=0.5)
        assert result.status == "error" and "0.5 s" in result.detail and time.monotonic() - started < 2
        assert await ping(path, timeout=0.3) is False


@pytest.mark.parametrize("reply", [b"", b"garbage\0", b"INSTREAM size limit exceeded. ERROR\0"])
async def test_a_clamd_that_hangs_up_or_babbles_is_an_error(reply, sock_path):
    async def rude(reader, writer):
        await reader.read(10)
        writer.write(reply)
        await writer.drain()
        writer.close()
    path, server = sock_path, await asyncio.start_unix_server(rude, sock_path)
    async with server:
        result = await scan(path, PDF * 10_000)
        assert result.status == "error" and result.detail


@pytest.mark.parametrize("reply, expected", [
    (b"stream: OK\0", ScanResult("clean", None, "OK")),
    (b"stream: Win.Test.EICAR_HDB-1 FOUND\0", ScanResult("infected", "Win.Test.EICAR_HDB-1", "FOUND")),
    (b"stream: Eicar-Signature FOUND\0", ScanResult("infected", "Eicar-Signature", "FOUND")),
    (b"INSTREAM size limit exceeded. ERROR\0",
     ScanResult("error", None, "clamd : INSTREAM size limit exceeded. ERROR")),
    (b"stream: Can't allocate memory ERROR\0", ScanResult("error", None, "clamd : Can't allocate memory ERROR")),
    (b"", ScanResult("error", None, "clamd a fermé la connexion sans répondre")),
    (b"hello\0", ScanResult("error", None, "réponse inattendue de clamd")),
])
def test_parse_reply(reply, expected):
    assert parse_reply(reply) == expected
