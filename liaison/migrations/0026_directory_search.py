"""The directory's search (#27): each professional's searchable text, folded (lower case, no accents) by the importer
the same way on both databases, and an index over it. SQLite: an FTS5 table (`unicode61 remove_diacritics 2`)
rebuilt by each import that changes a professional. PostgreSQL: a trigram index (pg_trgm) over the same text, for
its word-prefix searches; no `unaccent`, the text being folded already. On both, the list of the index's words
(directory_term), where a word of a query that is not there finds its near spellings.
`digest`: what a row says, to tell a changed row from an unchanged one without comparing every column."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from liaison.directory.search import FTS_TABLE

COMMON = (
    "ALTER TABLE directory_person ADD COLUMN digest TEXT",
    "ALTER TABLE directory_person ADD COLUMN search_text TEXT",        # name, profession, structure, commune…
    "ALTER TABLE directory_person ADD COLUMN specialty_search TEXT",   # savoir-faire, folded
    "ALTER TABLE directory_mailbox ADD COLUMN digest TEXT",
    "CREATE INDEX directory_person_active ON directory_person (active)",
    "CREATE TABLE directory_term (term TEXT PRIMARY KEY)",   # the words of the index, for the typos
)

SQLITE = (FTS_TABLE,)

POSTGRESQL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX directory_person_search ON directory_person USING gin "
    "((search_text || ' ' || COALESCE(specialty_search, '')) gin_trgm_ops)",
)


async def upgrade(conn: AsyncConnection) -> None:
    for statement in COMMON + (SQLITE if conn.dialect.name == "sqlite" else POSTGRESQL):
        await conn.execute(text(statement))
