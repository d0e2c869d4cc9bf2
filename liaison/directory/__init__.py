"""The national directory's import (`liaison annuaire importer`, the bot's daily folder) and its search.

columns.py: the columns each extract kind is read by, by name; reading.py: a file or a zip's members as a stream of
lines, their encoding found, their header checked; rows.py: a line's cells into the row stored, or why it is
malformed; importer.py: the rows staged, then merged in one transaction (added, changed, unchanged, inactivated);
search.py: the search, on SQLite (FTS5) or PostgreSQL (pg_trgm); folder.py: the folder read once a day.
"""
