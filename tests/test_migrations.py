"""Numbered migrations, on SQLite and PostgreSQL: all or nothing, and never on a newer database."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from liaison.db import DatabaseTooNew, Migration, bundled_migrations, create_engine, migrate, schema_version


@pytest.fixture
async def engine(db_url):
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


async def _tables(engine) -> list[str]:
    """The tables, a virtual table (SQLite FTS5) before the tables that hold its index (dropped with it)."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table' "
                                           "ORDER BY sql NOT LIKE 'CREATE VIRTUAL%', name"))
        else:
            rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))
        return [r[0] for r in rows]


async def test_fresh_database_reaches_latest_and_second_run_is_a_no_op(engine):
    latest = bundled_migrations()[-1].version
    assert await migrate(engine) == latest
    assert {"matrix_account", "bot_command", "schema_version"} <= set(await _tables(engine))
    assert await migrate(engine) == latest
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM schema_version"))).scalar() == latest


async def test_upgrade_from_every_past_version(db_url):
    migrations = bundled_migrations()
    for start in range(len(migrations)):
        eng = create_engine(db_url)
        cascade = "" if db_url.startswith("sqlite") else " CASCADE"
        tables = await _tables(eng)
        async with eng.begin() as conn:   # start from an empty database each time (every table is empty)
            for table in tables:
                await conn.execute(text(f"DROP TABLE IF EXISTS {table}{cascade}"))
        await migrate(eng, migrations[:start])
        assert await schema_version(eng) == start
        assert await migrate(eng) == migrations[-1].version
        await eng.dispose()


async def test_database_newer_than_code_is_refused(engine):
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO schema_version (version) VALUES (999)"))
    with pytest.raises(DatabaseTooNew, match="999"):
        await migrate(engine)


async def test_failed_migration_leaves_nothing_half_done(engine):
    good = Migration(1, "good", ("CREATE TABLE a (id INTEGER PRIMARY KEY)",))
    bad = Migration(2, "bad", ("CREATE TABLE b (id INTEGER PRIMARY KEY)", "INSERT INTO no_such_table VALUES (1)"))
    with pytest.raises(Exception):
        await migrate(engine, [good, bad])
    assert await schema_version(engine) == 1
    tables = await _tables(engine)
    assert "a" in tables and "b" not in tables


async def test_sqlite_is_configured_for_a_service(tmp_path):
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with eng.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
    await eng.dispose()
