"""The directory's search: a name, an RPPS, a profession with a commune or a department, a savoir-faire; accents
and case ignored (the text and the query are folded the same way, rows.fold_words), a typo or two forgiven.

Each word of the query is a word's prefix in the text; a word the index does not know is replaced by the known words
within one or two edits of it (directory_term, the index's words, rebuilt by each import). SQLite: FTS5 over each
active activity's folded text, ranked by bm25. PostgreSQL: its full-text search over the same text (`simple`
configuration: the words as they are), ranked by ts_rank.
An RPPS (11 digits) or a national id is an exact search. Matches are counted up to COUNTED (a total past it reads
« more than »). The terms are never logged.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liaison.directory.rows import fold_words
from liaison.stores.directory import COUNTED, Entry, mailboxes_of, national_id_of, person_entry

FTS_TABLE = ("CREATE VIRTUAL TABLE directory_fts USING fts5(body, national_id UNINDEXED, activity UNINDEXED, "
             "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
SKIPPED = {"de", "du", "des", "la", "le", "les", "l", "d", "a", "au", "aux", "en", "et", "sur", "dr", "pr", "docteur"}
MAX_WORDS = 8
MAX_CANDIDATES = 12
RANKED = COUNTED


async def rebuild_index(conn: AsyncConnection) -> None:
    """The index's words and, on SQLite, the FTS index, from the active activities (in the import's transaction);
    PostgreSQL's full-text index follows the table by itself."""
    await conn.execute(text("DELETE FROM directory_term"))
    if conn.dialect.name != "sqlite":
        await conn.execute(text(
            "INSERT INTO directory_term (term) SELECT DISTINCT w FROM directory_person, regexp_split_to_table("
            "search_text || ' ' || COALESCE(specialty_search, ''), ' ') AS w WHERE active = 1 AND w <> ''"))
        return
    await conn.execute(text("DROP TABLE IF EXISTS directory_fts"))
    await conn.execute(text(FTS_TABLE))
    await conn.execute(text(
        "INSERT INTO directory_fts (body, national_id, activity) SELECT search_text || ' ' || "
        "COALESCE(specialty_search, ''), national_id, activity FROM directory_person WHERE active = 1"))
    await conn.execute(text("DROP TABLE IF EXISTS temp.directory_vocab"))
    await conn.execute(text("CREATE VIRTUAL TABLE temp.directory_vocab USING fts5vocab(main, directory_fts, row)"))
    await conn.execute(text("INSERT INTO directory_term (term) SELECT term FROM temp.directory_vocab"))
    await conn.execute(text("DROP TABLE temp.directory_vocab"))


def words_of(query: str) -> list[str]:
    """The query's words, folded; a lone letter and the small words (« de », « la », « Dr ») dropped."""
    return [w for w in fold_words(query).split() if len(w) > 1 and w not in SKIPPED][:MAX_WORDS]


async def search(engine: AsyncEngine, query: str, *, limit: int = 10, offset: int = 0) -> tuple[list[Entry], int]:
    limit, offset = max(1, min(limit, 100)), max(0, offset)
    national_id = national_id_of(query.strip())
    async with engine.connect() as conn:
        if national_id is not None:
            rows = (await conn.execute(text(
                "SELECT * FROM directory_person WHERE national_id = :n AND active = 1 ORDER BY activity"),
                {"n": national_id})).all()
            total, page = len(rows), rows[offset:offset + limit]
        else:
            words = words_of(query)
            if not words:
                return [], 0
            groups = []
            for word in words:
                alternatives = await _spellings(conn, word)
                if not alternatives:
                    return [], 0
                groups.append(alternatives)
            find = _sqlite if conn.dialect.name == "sqlite" else _postgresql
            page, total = await find(conn, words, groups, limit, offset)
        boxes = await mailboxes_of(conn, {r.national_id for r in page})
    return [person_entry(r, boxes.get(r.national_id)) for r in page], total


async def _spellings(conn: AsyncConnection, word: str) -> list[str]:
    """[word] when a word of the index starts with it, else the index's words near it (maybe none)."""
    after = word[:-1] + chr(ord(word[-1]) + 1)
    known = (await conn.execute(text("SELECT 1 FROM directory_term WHERE term >= :w AND term < :after LIMIT 1"),
                                {"w": word, "after": after})).first()
    return [word] if known else await _near(conn, word)


async def _sqlite(conn: AsyncConnection, words: list[str], groups: list[list[str]], limit: int,
                  offset: int) -> tuple[list[Any], int]:
    match = " AND ".join("(" + " OR ".join(f'"{a}"*' if a in words else f'"{a}"' for a in alternatives) + ")"
                         for alternatives in groups)
    # One pass over the matches, as far as COUNTED + 1: the count, and the page when there are too many to rank.
    hits = (await conn.execute(text(
        "SELECT national_id, activity FROM directory_fts WHERE directory_fts MATCH :q LIMIT :cap"),
        {"q": match, "cap": COUNTED + 1})).all()
    total = len(hits)
    if total > RANKED and offset + limit <= len(hits):
        keys = [(h.national_id, h.activity) for h in hits[offset:offset + limit]]   # the index's order
    else:
        # Ranked (bm25) when there are few; past RANKED (a page beyond the first thousand), in the index's order: a
        # page of thousands alike needs a more precise query, not a ranking that costs more than the search.
        order = "rank" if total <= RANKED else "rowid"
        keys = [(r.national_id, r.activity) for r in (await conn.execute(text(
            f"SELECT national_id, activity FROM directory_fts WHERE directory_fts MATCH :q ORDER BY {order} "
            "LIMIT :l OFFSET :o"), {"q": match, "l": limit, "o": offset})).all()]
    if not keys:
        return [], total
    found = {(r.national_id, r.activity): r for r in (await conn.execute(text(
        "SELECT * FROM directory_person WHERE " + " OR ".join(
            f"(national_id = :n{i} AND activity = :a{i})" for i in range(len(keys)))),
        {**{f"n{i}": n for i, (n, _a) in enumerate(keys)}, **{f"a{i}": a for i, (_n, a) in enumerate(keys)}})).all()}
    return [found[k] for k in keys if k in found], total


async def _near(conn: AsyncConnection, word: str) -> list[str]:
    """The index's words within one edit (two for a word of 7 letters or more) that begin as it does: its first
    letter, its first two from 5 letters on (a typo there is not forgiven: the price of a quick answer)."""
    if len(word) < 4 or not word.isalpha():
        return []
    allowed = 1 if len(word) < 7 else 2
    start = word[:2] if len(word) >= 5 else word[:1]
    terms: list[str] = list((await conn.execute(text(
        "SELECT term FROM directory_term WHERE term >= :a AND term < :b AND length(term) BETWEEN :lo AND :hi"),
        {"a": start, "b": start[:-1] + chr(ord(start[-1]) + 1), "lo": len(word) - allowed,
         "hi": len(word) + allowed})).scalars())
    letters = set(word)
    scored = sorted((d, t) for t in terms if len(letters.symmetric_difference(t)) <= 2 * allowed
                    and (d := distance(word, t, allowed)) <= allowed)
    return [t for _d, t in scored[:MAX_CANDIDATES]]


def distance(a: str, b: str, bound: int) -> int:
    """Damerau-Levenshtein (adjacent swaps count one) between a and b, or bound + 1 once it passes bound."""
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    before, row = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > bound:
            return bound + 1
        before, row = row, current
    return row[-1]


async def _postgresql(conn: AsyncConnection, words: list[str], groups: list[list[str]], limit: int,
                      offset: int) -> tuple[list[Any], int]:
    body = "to_tsvector('simple', search_text || ' ' || COALESCE(specialty_search, ''))"
    query = " & ".join("(" + " | ".join(f"{a}:*" if a in words else a for a in alternatives) + ")"
                       for alternatives in groups)
    where = f"{body} @@ to_tsquery('simple', :q) AND active = 1"
    total: int = (await conn.execute(text(f"SELECT COUNT(*) FROM (SELECT 1 FROM directory_person WHERE {where} "
                                           "LIMIT :cap) m"), {"q": query, "cap": COUNTED + 1})).scalar_one()
    order = (f"ts_rank({body}, to_tsquery('simple', :q)) DESC, last_name, first_name, national_id, activity"
             if total <= RANKED else "national_id, activity")
    rows = (await conn.execute(text(
        f"SELECT * FROM directory_person WHERE {where} ORDER BY {order} LIMIT :l OFFSET :o"),
        {"q": query, "l": limit, "o": offset})).all()
    return list(rows), total
