"""The database: SQLAlchemy async on SQLite (default) or PostgreSQL, with numbered migrations.

Each migration runs in its own transaction; a database newer than this code is refused. A migration is a `.sql`
file of statements, or a `.py` module whose `async def upgrade(conn)` changes rows as no SQL common to both
databases can (hashes, the trace's chain).
"""
from __future__ import annotations

import base64
import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = structlog.get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sql|py)$")


class DatabaseTooNew(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    upgrade: Callable[[AsyncConnection], Awaitable[None]] | None = None   # a .py migration's


def bundled_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("liaison.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m and m.group(3) == "py":
            module = importlib.import_module(f"liaison.migrations.{entry.name[:-3]}")
            found.append(Migration(int(m.group(1)), m.group(2), (), module.upgrade))
        elif m:
            sql = entry.read_text(encoding="utf-8")
            statements = tuple(s.strip() for s in re.split(r";\s*$", sql, flags=re.M) if _has_sql(s))
            found.append(Migration(int(m.group(1)), m.group(2), statements))
    found.sort(key=lambda mig: mig.version)
    if [mig.version for mig in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("migrations must be numbered 0001, 0002, … without gaps")
    return found


def _has_sql(chunk: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines())


def create_engine(url: str) -> AsyncEngine:
    """hide_parameters: an error logged with its statement never carries the values bound to it (subjects,
    message bodies, quarantined senders)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)


def fields(row: Any) -> tuple[Any, ...]:
    """A database row's values, to build a record with `Record(*fields(row))` (a row's columns are untyped)."""
    return tuple(row)


def bytes_param(engine: AsyncEngine, data: bytes) -> bytes | str:
    """A mail's raw bytes for a TEXT column: SQLite keeps bytes as they are whatever a column's declared type (a
    20 MB mail costs 20 MB, not 27 MB of base64 twice over, bytes then text); PostgreSQL's TEXT takes base64."""
    return data if engine.dialect.name == "sqlite" else base64.b64encode(data).decode()


def bytes_value(value: bytes | str | None) -> bytes:
    """What bytes_param stored (base64 text in rows written before, on SQLite too); b"" for NULL."""
    if not value:
        return b""
    return bytes(value) if isinstance(value, (bytes, memoryview)) else base64.b64decode(value)


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite does not open transactions around DDL by itself: take control of BEGIN,
    # so that a migration is all or nothing (SQLAlchemy's documented recipe). IMMEDIATE:
    # a deferred transaction that reads then writes fails at once with "database is locked"
    # when another connection writes, instead of waiting out the busy timeout.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def schema_version(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
        value = (await conn.execute(text("SELECT MAX(version) FROM schema_version"))).scalar()
    return value or 0


async def migrate(engine: AsyncEngine, migrations: list[Migration] | None = None) -> int:
    """Bring the schema up to date; returns the version reached."""
    migrations = bundled_migrations() if migrations is None else migrations
    latest = migrations[-1].version if migrations else 0
    current = await schema_version(engine)
    if current > latest:
        raise DatabaseTooNew(
            f"la base est au schéma {current}, ce code ne connaît que {latest} : mettez Liaison à jour"
        )
    for mig in migrations:
        if mig.version <= current:
            continue
        async with engine.begin() as conn:
            for statement in mig.statements:
                await conn.execute(text(statement))
            if mig.upgrade:
                await mig.upgrade(conn)
            await conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": mig.version})
        log.info("db.migrated", version=mig.version, name=mig.name)
    return max(current, latest)


async def open_database(url: str) -> AsyncEngine:
    engine = create_engine(url)
    await migrate(engine)
    return engine
