"""The end-to-end keys on disk, encrypted with the configured key rather than matrix-nio's default.

matrix-nio encrypts ("pickles") a device's Olm account, its Olm sessions and the room keys it holds with a
passphrase, by default the constant "DEFAULT_KEY": anyone with a copy of the store would read every room key.
The services pass `bot.store_pickle_key` / `bridge.store_pickle_key` instead (liaison.matrix.Matrix), and a
store written before that key was configured is re-encrypted with it once, in one SQLite transaction, before
nio opens it (nio itself would fail on a store under another key). A store that opens with neither key is
refused, never recreated: the device's keys would be lost.

This module reads nio's file format (vodozemac pickles in nio's SQLite tables), not nio's API, which the rest of
the package (client.py, keys.py) calls.
"""
from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import structlog
import vodozemac

from liaison.config import ConfigError

log = structlog.get_logger(__name__)

NIO_DEFAULT_KEY = "DEFAULT_KEY"
# nio's tables and columns holding a pickle, and what each pickle is.
_PICKLED = (("accounts", "account", vodozemac.Account),
            ("olmsessions", "session", vodozemac.Session),
            ("megolminboundsessions", "session", vodozemac.InboundGroupSession))


class StoreKeyError(RuntimeError):
    """A store that neither the configured key nor nio's default key opens."""


def _key(passphrase: str) -> bytes:
    return hashlib.sha256(passphrase.encode()).digest()   # how nio derives vodozemac's pickle key


def _text(value) -> str:
    return bytes(value).decode() if isinstance(value, (bytes, bytearray, memoryview)) else str(value)


def _opens(kind, pickle: str, passphrase: str) -> bool:
    try:
        kind.from_pickle(pickle, _key(passphrase))
        return True
    except vodozemac.PickleException:
        return False


def _under_default_key(kind, pickle: str):
    try:
        return kind.from_pickle(pickle, _key(NIO_DEFAULT_KEY))
    except vodozemac.PickleException:   # written by libolm, before nio moved to vodozemac
        return kind.from_libolm_pickle(pickle, NIO_DEFAULT_KEY.encode())


def repickle(db: Path, key: str) -> int:
    """Re-encrypt one nio store with `key`; the number of rows changed (0: already done, or empty)."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        accounts = con.execute("SELECT account FROM accounts").fetchall() if "accounts" in tables else []
        if all(_opens(vodozemac.Account, _text(a), key) for (a,) in accounts):
            return 0
        con.execute("PRAGMA secure_delete = ON")   # the old pages are overwritten, as nio does
        con.execute("BEGIN IMMEDIATE")
        changed = 0
        try:
            for table, column, kind in _PICKLED:
                if table not in tables:
                    continue
                for rowid, value in con.execute(f"SELECT rowid, {column} FROM {table}").fetchall():
                    if _opens(kind, _text(value), key):
                        continue
                    try:
                        opened = _under_default_key(kind, _text(value))
                    except (vodozemac.PickleException, vodozemac.LibolmPickleException):
                        raise StoreKeyError(table) from None
                    con.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                                (opened.pickle(_key(key)).encode(), rowid))
                    changed += 1
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return changed
    finally:
        con.close()


def repickle_stores(store_dirs, key: str) -> tuple[int, int]:
    """Every nio store (`@user:server_DEVICE.db`) directly in these folders: (stores changed, rows changed)."""
    stores = rows = 0
    for folder in store_dirs:
        for db in sorted(Path(folder).glob("@*.db")):
            changed = repickle(db, key)
            stores, rows = stores + bool(changed), rows + changed
    return stores, rows


async def prepare_stores(store_dirs, key: str, config_key: str) -> None:
    """Before any client opens them: the stores under `key`, or the start refused naming the config key."""
    try:
        stores, rows = await asyncio.to_thread(repickle_stores, list(store_dirs), key)
    except StoreKeyError:
        raise ConfigError(config_key, "cette clé n'ouvre pas les clés de chiffrement déjà gardées sur le disque "
                                      "(ni l'ancienne clé par défaut de matrix-nio) : remettez la clé utilisée "
                                      "jusqu'ici. Le magasin n'est pas recréé : les clés de l'appareil seraient "
                                      "perdues") from None
    if stores:
        log.info("crypto_store.reencrypted", stores=stores, rows=rows)
