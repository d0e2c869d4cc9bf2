"""Secrets at rest: what holds a key, a token, a password or patient data is readable by its owner only.

The services and `liaison up` start with umask 077 (every file they create is 0600, every folder 0700);
files written before that (an upgrade) are tightened at start; `liaison check` lists what is still open.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog
import yaml

from liaison.config import inline_secret_owners

log = structlog.get_logger(__name__)

UMASK = 0o077


def restrict_umask() -> None:
    """Before anything is written: new files 0600, new folders 0700 (children processes inherit it)."""
    os.umask(UMASK)


def private_dir(path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: str | Path, data: str | bytes) -> None:
    """Written whole (a reader never sees half a file) and 0600 from its first byte, whatever was there."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)


def _walk(path: Path):
    if path.is_symlink() or not path.exists():
        return
    yield path
    if path.is_dir():
        for entry in sorted(path.iterdir()):
            yield from _walk(entry)


def tighten(paths) -> int:
    """Folders 0700, files without group/other bits, under each path; how many were changed."""
    changed = 0
    for top in paths:
        for p in _walk(Path(top)):
            mode = stat.S_IMODE(p.lstat().st_mode)
            wanted = 0o700 if p.is_dir() else mode & ~0o077
            if stat.S_ISSOCK(p.lstat().st_mode) or mode == wanted:
                continue
            try:
                p.chmod(wanted)
            except PermissionError:   # another account's file (Dovecot's mail user): left to its owner
                continue
            changed += 1
    return changed


def tighten_at_start(paths) -> None:
    """What a service keeps, tightened before it opens anything (files written before an upgrade)."""
    changed = tighten(paths)
    if changed:
        log.info("files.tightened", count=changed)


def exposed(paths) -> list[tuple[Path, int]]:
    """(path, mode) of what group or others may read or write, under each path."""
    found = []
    for top in paths:
        for p in _walk(Path(top)):
            mode = stat.S_IMODE(p.lstat().st_mode)
            if not stat.S_ISSOCK(p.lstat().st_mode) and mode & 0o066:
                found.append((p, mode))
    return found


def sqlite_files(url: str) -> list[Path]:
    """The SQLite database and its WAL companions (they hold recent writes in clear); none for PostgreSQL."""
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return []
    db = Path(url[len(prefix):])
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def bot_owned(cfg) -> list[Path]:
    """What the bot writes and keeps: the database, its end-to-end keys, the trace's anchors."""
    return [*sqlite_files(cfg.database.url), Path(cfg.bot.store_dir),
            *([Path(cfg.trace.anchor_file)] if cfg.trace else [])]


def bridge_owned(cfg) -> list[Path]:
    """What the bridge writes and keeps: the database, its and its puppets' end-to-end keys."""
    return [*sqlite_files(cfg.database.url), Path(cfg.bridge.store_dir)]


def secret_files(cfg) -> list[Path]:
    """Every file the configuration names that holds a secret, those the operator provides included."""
    paths = bot_owned(cfg)
    if cfg.bridge:
        paths += [Path(cfg.bridge.store_dir), Path(cfg.bridge.registration), Path(cfg.bridge.mailbox.key)]
    return paths


def exposure_report(cfg, config_path: str | Path) -> list[str]:
    """`liaison check`: one French sentence per secret file (or folder of them) others may read."""
    lines = []
    config_path = Path(config_path)
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    inline = list(inline_secret_owners(raw))
    if inline and stat.S_IMODE(config_path.stat().st_mode) & 0o077:
        lines.append(f"attention : {config_path} contient des secrets en clair ({', '.join(inline)}) et d'autres "
                     f"comptes peuvent le lire : chmod 600 {config_path}, ou écrivez-les ${{VARIABLE}}")
    seen: set[Path] = set()
    for top in secret_files(cfg):
        found = [(p, m) for p, m in exposed([top]) if p not in seen]
        seen.update(p for p, _ in found)
        if len(found) == 1 and found[0][0] == top:
            what = "chmod 700" if top.is_dir() else "chmod 600"
            lines.append(f"attention : {top} est lisible par d'autres comptes (droits {oct(found[0][1])[2:]}) : "
                         f"{what} {top}")
        elif found:
            lines.append(f"attention : {len(found)} fichier(s) ou dossier(s) sous {top} sont lisibles par d'autres "
                         f"comptes : chmod -R go-rwx {top}")
    return lines


def shared_secrets_report(cfg, config_path: str | Path) -> list[str]:
    """`liaison check`: the secrets of one service written in clear in a file both services read (the other one
    then holds them too), in one French sentence; none when the file has no bridge section."""
    config_path = Path(config_path)
    owners = inline_secret_owners(yaml.safe_load(config_path.read_text(encoding="utf-8")) or {})
    own = [key for key, owner in owners.items() if owner != "both"]
    if not cfg.bridge or not own:
        return []
    return [f"attention : {config_path} est lu par le bot et par le pont, et donne en clair des secrets d'un seul des "
            f"deux ({', '.join(own)}) : écrivez-les ${{VARIABLE}}, variable donnée au seul service qui s'en sert "
            f"(README, « Chaque service ses secrets »)"]
