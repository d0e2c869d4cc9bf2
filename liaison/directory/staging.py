"""The rows read from an extract, staged in a temporary table of the import's own connection by batches, before the
merge (importer.py): SQLite, executemany into a table whose primary key keeps the first row of each key; PostgreSQL,
COPY, then the first row of each key kept."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Table:
    """Where a kind of extract goes: its table, its key, the staged columns, and how a line becomes a row."""
    name: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    build: Callable[[list[str], dict[str, int]], tuple[str | None, ...]]


class Stage:
    """The rows read, in a temporary table of the import's own connection (outside any transaction: on SQLite, the
    directory's tables are not locked while a file is read)."""

    def __init__(self, conn: AsyncConnection):
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.driver: Any = None

    async def create(self, table: Table) -> None:
        self.driver = (await self.conn.get_raw_connection()).driver_connection
        await self.drop()
        columns = ", ".join(f"{c} TEXT" for c in table.columns)
        if self.sqlite:
            await self.driver.execute(f"CREATE TEMP TABLE directory_stage ({columns}, "
                                      f"PRIMARY KEY ({', '.join(table.keys)}))")
        else:
            await self.driver.execute(f"CREATE TEMP TABLE directory_stage_raw (line SERIAL, {columns})")

    async def write(self, table: Table, batch: list[tuple[Any, ...]]) -> None:
        if self.sqlite:
            marks = ", ".join("?" for _ in table.columns)
            await self.driver.execute("BEGIN")
            await self.driver.executemany(f"INSERT OR IGNORE INTO directory_stage VALUES ({marks})", batch)
            await self.driver.execute("COMMIT")
        else:
            await self.driver.copy_records_to_table("directory_stage_raw", records=batch, columns=table.columns)
        await asyncio.sleep(0)

    async def finish(self, table: Table) -> None:
        """PostgreSQL: the first row of each key only (SQLite's primary key kept the first already)."""
        if self.sqlite:
            return
        keys = ", ".join(table.keys)
        await self.driver.execute(
            f"CREATE TEMP TABLE directory_stage AS SELECT DISTINCT ON ({keys}) {', '.join(table.columns)} "
            f"FROM directory_stage_raw ORDER BY {keys}, line")
        await self.driver.execute(f"CREATE UNIQUE INDEX ON directory_stage ({keys})")
        await self.driver.execute("ANALYZE directory_stage")

    async def drop(self) -> None:
        if self.driver is None:
            return
        await self.driver.execute("DROP TABLE IF EXISTS temp.directory_stage" if self.sqlite else
                                  "DROP TABLE IF EXISTS directory_stage, directory_stage_raw")
