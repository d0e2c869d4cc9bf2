"""One scrubber between every log line and the disk: addresses, INS, puppets' ids, tokens and the values of
sensitive keys never reach a log, whatever logged them (our lines, an exception's message, a library)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from liaison.db import create_engine
from liaison.logs import MASK, find_sensitive, scrub

ADDRESS = "c.lefebvre@chu-demo.mssante.test"
PUPPET = "@mss_c.lefebvre=40chu-demo.mssante.test:liaison.localhost"
INS = "148057512345678"


@pytest.mark.parametrize("value, kind", [
    (f"login failed for {ADDRESS}", "adresse"), (f"Message-ID <abc.123@{ADDRESS.split('@')[1]}>", "adresse"),
    (f"invite {PUPPET}: M_FORBIDDEN", "marionnette"), ("store puppets/mss_c.lefebvre=40chu-demo.mssante.test",
                                                       "adresse"),
    (f"patient {INS}", "ins"), ("INS 1 48 05 75 123 456 78", "ins"), ("nir 248052A12345678", "ins"),
    ("GET /sync?access_token=syt_bGlhaXNvbg_abc_123&since=s1", "jeton"), ("Authorization: Bearer abc.def", "jeton"),
])
def test_each_detector_finds_its_kind_and_the_processor_masks_it(value, kind):
    assert kind in find_sensitive(value)
    line = scrub(None, "error", {"event": "x.failed", "error": value, "nested": {"why": [value]}})
    assert not find_sensitive(json.dumps(line, ensure_ascii=False)), line


@pytest.mark.parametrize("clean", [
    "2025-01-02T10:00:00.123456Z", "!AbCdEf:liaison.localhost", "$event_id-123", "@medecin:liaison.localhost",
    "mail_id=9f2c3d4e-1b2a-4c5d-8e9f-0a1b2c3d4e5f", "sha256=3f2a1b4c5d6e7f80123456789abcdef0123456789abcdef",
    "1.2.250.1.213.1.4.10", "P-7K3Q9", "127.0.0.1:8008", "size=10485760",
])
def test_ids_counts_and_hashes_are_left_alone(clean):
    assert find_sensitive(clean) == []
    assert scrub(None, "info", {"event": "x", "v": clean})["v"] == clean


def test_sensitive_keys_are_masked_whatever_their_value_and_numbers_stay():
    line = scrub(None, "info", {"event": "x", "subject": "Sortie de M. Durand", "filename": "ordonnance.pdf",
                                "password": 1234, "at": 1733145600000, "count": 3, "_record": object()})
    assert line["subject"] == line["filename"] == line["password"] == MASK
    assert line["at"] == 1733145600000 and line["count"] == 3, "numbers logged as numbers are ids or counts"


_PROGRAM = textwrap.dedent(f"""
    import logging, sys, structlog
    from liaison.logs import setup_logging
    setup_logging(sys.argv[1], "info", sys.argv[2])
    log = structlog.get_logger("test")
    try:
        raise RuntimeError("refused for {ADDRESS} (INS {INS})")
    except RuntimeError:
        log.exception("ours.failed", error="{PUPPET}")
    try:
        raise ValueError("library saw {ADDRESS}")
    except ValueError:
        logging.getLogger("some.library").error("lib says {PUPPET}", exc_info=True)
    raise SystemError("uncaught, about {ADDRESS}")
""")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_the_wiring_scrubs_our_lines_libraries_and_uncaught_exceptions(tmp_path, fmt):
    log_file = tmp_path / "service.log"
    run = subprocess.run([sys.executable, "-c", _PROGRAM, fmt, str(log_file)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1
    written = log_file.read_text()
    for marker in ("ours.failed", "lib says", "RuntimeError", "ValueError", "process.uncaught", "SystemError"):
        assert marker in written, (marker, written)
    for out in (written, run.stderr):
        assert not find_sensitive(out), out
        assert "lefebvre" not in out.lower() and INS not in out


async def test_a_database_error_carries_no_bound_value(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (subject TEXT UNIQUE)"))
            await conn.execute(text("INSERT INTO t VALUES (:s)"), {"s": "Sortie de M. Durand"})
        with pytest.raises(IntegrityError) as err:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:s)"), {"s": "Sortie de M. Durand"})
        assert "Durand" not in str(err.value) and "hidden" in str(err.value)
    finally:
        await engine.dispose()
