"""Secrets at rest in `liaison up`'s folder: every file its owner's only, while it runs and after; a store from
before the pickle key (nio's DEFAULT_KEY) is re-encrypted at the next start and the bot keeps its device."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from pathlib import Path

from liaison.matrix.crypto_store import _PICKLED, NIO_DEFAULT_KEY, _key, _text
from tests.support.clinician import Clinician
from tests.support.mss import OPEN, is_puppet, letter, room_of, send_mail, xdm_letter
from tests.test_stack import _devices, _start, _stop, stack_dir  # noqa: F401 (a fixture)

# Walked through by Dovecot's unprivileged processes (to their sockets and mailboxes), never listed.
TRAVERSED = {".": 0o711, "mail": 0o711, "mail/dovecot": 0o711}
# Dovecot's: its auth process (group dovecot) reads the passwords; its runtime folder and its list of
# instances are its own (sockets, pid, a path).
DOVECOT_OWN = {"mail/dovecot/passwd": 0o640, "mail/dovecot/state/instances": 0o644}
DOVECOT_RUNTIME = "mail/dovecot/run"
# The mailboxes: a 0700 folder of Dovecot's mail user; inside, Dovecot sets some modes itself (an empty 0444
# uidvalidity marker), out of anyone else's reach.
MAILBOXES = "mail/dovecot/mail"


def _open_to_others(root: Path) -> list[str]:
    wrong = []
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        if rel_folder == DOVECOT_RUNTIME or rel_folder.startswith(DOVECOT_RUNTIME + "/"):
            continue
        for name in [None, *files]:
            path = Path(folder) if name is None else Path(folder) / name
            rel = os.path.relpath(path, root)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or stat.S_ISSOCK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode)
            if rel.startswith(MAILBOXES + "/") and not mode & 0o022:
                continue
            allowed = TRAVERSED.get(rel) if name is None else DOVECOT_OWN.get(rel)
            if mode & 0o077 and mode != allowed:
                wrong.append(f"{rel} {oct(mode)}")
    return wrong


def _back_to_nio_default_key(store: Path, key: str) -> int:
    """What a store written before this change looks like: every pickle under nio's DEFAULT_KEY."""
    changed = 0
    for db in store.glob("@*.db"):
        with sqlite3.connect(db) as con:
            for table, column, kind in _PICKLED:
                for rowid, value in con.execute(f"SELECT rowid, {column} FROM {table}").fetchall():
                    old = kind.from_pickle(_text(value), _key(key)).pickle(_key(NIO_DEFAULT_KEY))
                    con.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (old.encode(), rowid))
                    changed += 1
    return changed


async def test_every_file_liaison_up_writes_is_the_owner_s_only(tmp_path, stack_dir):  # noqa: F811
    root, out = stack_dir / "stack", tmp_path / "out.txt"
    root.mkdir()
    (root / "liaison.yaml").write_text("# écrit par une version d'avant\n")
    (root / "liaison.yaml").chmod(0o644)
    (root / "bench").mkdir(mode=0o755)
    proc = _start(root, out)
    try:
        stack = json.loads((root / "stack.json").read_text())
        mail = stack["mail"]
        coord = next(a for a in stack["accounts"] if a["role"] == "coordinator")
        gp = next(a for a in stack["accounts"] if a["role"] == "gp")
        c = await Clinician(stack["homeserver"]["url"], coord["user_id"], coord["password"], tmp_path / "c").start()
        desk = await c.create_room([stack["bot"]["user_id"]])
        await c.wait_joined(desk, stack["bot"]["user_id"])
        opened, _ = await c.ask(desk, f"{OPEN} --equipe {gp['user_id']}", timeout=60)
        code, pathway_room = re.search(r"\((P-[A-Z0-9]+)\)", opened.body).group(1), room_of(opened.body)
        cardio, stranger = mail["externals"][0], mail["untrusted"][0]
        to = f"liaison+{code.lower()}@{mail['bridge_address'].split('@')[1]}"
        await send_mail(mail, cardio, letter(cardio, to, subject="Sortie", text="Lettre.", xdm=xdm_letter()), to)
        await send_mail(mail, stranger, letter(stranger, mail["bridge_address"], subject="Bonjour", text="…"),
                        mail["bridge_address"])
        doctor = await Clinician(stack["homeserver"]["url"], gp["user_id"], gp["password"], tmp_path / "gp").start()
        await doctor.wait_for(lambda r, e: r == pathway_room and is_puppet(getattr(e, "sender", "")), 60)
        await c.wait_for(lambda r, e: "quarantaine" in getattr(e, "body", ""), 60)
        await doctor.stop()
        await c.stop()
        assert list((root / "bridge-store" / "puppets").iterdir()), "a puppet's keys are on disk"
        assert (root / "liaison.db-wal").exists(), "checked while SQLite's journal is open"
        assert _open_to_others(root) == [], "while the stack runs"
    finally:
        _stop(proc, root)
    assert _open_to_others(root) == [], "after it stopped"
    config = (root / "liaison.yaml").read_text()
    assert "${LIAISON_BOT_STORE_KEY}" in config and "${LIAISON_BRIDGE_STORE_KEY}" in config
    assert (root / "bot-store.key").read_text() not in config, "the keys stay out of the config file"

    # An upgrade: the bot's store as an older Liaison left it (nio's default key). It is re-encrypted with
    # the configured key at the next start, and the bot keeps its device and answers in the encrypted room.
    assert _back_to_nio_default_key(root / "bot-store", (root / "bot-store.key").read_text().strip()) >= 1
    proc = _start(root, out)
    try:
        devices = _devices(root)
        assert len(devices) == 2 and devices[0] == devices[1], "the same device, its keys kept"
        assert "crypto_store.reencrypted" in (root / "logs" / "bot.log").read_text()
        c = await Clinician(stack["homeserver"]["url"], coord["user_id"], coord["password"], tmp_path / "c2").start()
        reply, _ = await c.ask(desk, "!aide")
        assert reply.decrypted and "Commandes de Liaison" in reply.body
        await c.stop()
    finally:
        _stop(proc, root)
    assert _open_to_others(root) == []
