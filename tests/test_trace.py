"""The trace is append-only and hash-chained: tampering with any row is detected, on both databases."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import yaml
from sqlalchemy import text

from liaison.db import create_engine, migrate
from liaison.stores.trace import Trace
from policies.decision import Allow, Deny

ALLOW = Allow("team.health", "membre de l'équipe de soins", "CSP L.1110-4 II")
DENY = Deny("outside.no_consent", "hors équipe sans consentement", "CSP L.1110-4 III")


@pytest.fixture
async def trace(db_url):
    engine = create_engine(db_url)
    await migrate(engine)
    yield Trace(engine)
    await engine.dispose()


async def _fill(trace, n=6):
    for i in range(n):
        await trace.append(actor="@coord:hs", action="inviter", subject=f"@p{i}:hs", decision=ALLOW if i % 2 else DENY,
                           patient_id="patient-1", pathway_id="pw-1", data_category="soins")


async def test_chain_holds_and_concurrent_appends_keep_it(trace):
    await _fill(trace)
    await asyncio.gather(*(trace.append(actor="@c:hs", action="relayer", subject=f"x{i}", decision=ALLOW)
                           for i in range(15)))
    check = await trace.verify()
    assert check.ok and check.entries == 21
    mine = await trace.entries("patient-1")
    assert [e.seq for e in mine] == list(range(1, 7)) and mine[0].rule == "outside.no_consent"


@pytest.mark.parametrize("tamper, first_bad", [
    ("UPDATE trace_entry SET rule = 'team.health' WHERE seq = 3", 3),
    ("UPDATE trace_entry SET allowed = 1 WHERE seq = 1", 1),   # a refusal turned into a share
    ("DELETE FROM trace_entry WHERE seq = 4", 4),
    ("UPDATE trace_entry SET subject = '@autre:hs', hash = 'f' WHERE seq = 5", 5),
])
async def test_tampering_is_detected_at_the_first_bad_entry(trace, tamper, first_bad):
    await _fill(trace)
    async with trace.engine.begin() as conn:
        await conn.execute(text(tamper))
    check = await trace.verify()
    assert not check.ok and check.first_bad == first_bad


async def test_cli_verify_names_the_tampered_entry(tmp_path):
    db = tmp_path / "l.db"
    cfg = tmp_path / "liaison.yaml"
    cfg.write_text(yaml.safe_dump({"homeserver": {"url": "http://127.0.0.1:1", "server_name": "hs"},
                                   "bot": {"user_id": "@bot:hs", "password": "a-real-password",
                                           "store_pickle_key": "t" * 32},
                                   "database": {"url": f"sqlite+aiosqlite:///{db}"}}))
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await migrate(engine)
    await _fill(Trace(engine))
    run = lambda: subprocess.run([sys.executable, "-m", "liaison.cli", "trace", "verify", "-c", str(cfg)],
                                 capture_output=True, text=True)
    ok = await asyncio.to_thread(run)
    assert ok.returncode == 0 and "6 entrées" in ok.stdout
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE trace_entry SET actor = '@intrus:hs' WHERE seq = 2"))
    await engine.dispose()
    bad = await asyncio.to_thread(run)
    assert bad.returncode == 1 and "entrée 2" in bad.stdout
