"""Secrets at rest: written 0600 from the first byte, tightened at start when an older version left them open,
and `liaison check` names what others could still read (the config file too, when it holds a secret in clear)."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import yaml

from liaison.cli import main as cli
from liaison.private import exposed, tighten, write_private

KEY = "9c1e" * 16


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_private_file_is_0600_even_over_an_open_one(tmp_path):
    path = tmp_path / "homeserver.yaml"
    path.write_text("ancien")
    path.chmod(0o644)
    write_private(path, "registration_shared_secret: s3cr3t\n")
    assert _mode(path) == 0o600 and path.read_text().startswith("registration")
    assert not list(tmp_path.glob("*.tmp"))


def test_tighten_closes_files_and_folders_and_leaves_sockets(tmp_path):
    store = tmp_path / "bot-store"
    store.mkdir(mode=0o755)
    (store / "@liaison:hs_APPAREIL.db").write_text("x")
    (store / "@liaison:hs_APPAREIL.db").chmod(0o644)
    (tmp_path / "liaison.db").write_text("x")
    (tmp_path / "liaison.db").chmod(0o664)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(store / "s"))
        (store / "s").chmod(0o666)   # a service's socket keeps the mode its clients need
        assert len(exposed([tmp_path])) == 3
        assert tighten([store, tmp_path / "liaison.db", tmp_path / "absent"]) == 3
        assert _mode(store / "s") == 0o666
    assert _mode(store) == 0o700 and _mode(store / "@liaison:hs_APPAREIL.db") == 0o600
    assert _mode(tmp_path / "liaison.db") == 0o600
    assert tighten([store]) == 0, "nothing left to do"


def _config(tmp_path, **bridge) -> str:
    (tmp_path / "appservice.yaml").write_text("hs_token: x\n")
    (tmp_path / "boite.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    (tmp_path / "t.xml").write_text("<x/>")
    cfg = {"homeserver": {"url": "http://127.0.0.1:8008", "server_name": "hs"},
           "bot": {"user_id": "@liaison:hs", "password": "en-clair-mais-long", "store_dir": "bot-store",
                   "store_pickle_key": "${STORE_KEY}"},
           "database": {"url": "sqlite+aiosqlite:///liaison.db"},
           "bridge": {"user_id": "@mss_relais:hs", "registration": "appservice.yaml", "trusted_domains_file": "t.xml",
                      "store_dir": "bridge-store", "store_pickle_key": "${STORE_KEY}",
                      "mailbox": {"address": "msp@msp.mssante.fr", "display_name": "MSP",
                                  "imap": {"host": "h", "port": 993}, "smtp": {"host": "h", "port": 465},
                                  "imap_user": "u", "imap_password": "${STORE_KEY}", "ca": "ca.pem",
                                  "cert": "c.pem", "key": "boite.key"}, **bridge}}
    path = tmp_path / "liaison.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_liaison_check_warns_about_secret_files_others_can_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STORE_KEY", KEY)
    config = _config(tmp_path)
    for name in ("liaison.db", "liaison.db-wal"):
        (tmp_path / name).write_text("x")
    (tmp_path / "bot-store").mkdir()
    (tmp_path / "bot-store" / "@liaison:hs_A.db").write_text("x")
    for path in tmp_path.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert cli(["check", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "contient des secrets en clair (bot.password)" in out and "chmod 600" in out
    for name in ("liaison.db", "liaison.db-wal", "appservice.yaml", "boite.key"):
        assert f"{tmp_path / name} est lisible par d'autres comptes (droits 644)" in out, (name, out)
    assert f"2 fichier(s) ou dossier(s) sous {tmp_path / 'bot-store'}" in out
    assert "6 avertissement(s)" in out

    for path in tmp_path.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    assert cli(["check", "-c", config]) == 0
    *said, last = capsys.readouterr().out.strip().splitlines()
    assert last == "configuration valide ; des secrets d'un seul service en clair dans le fichier commun"
    assert len(said) == 1 and "lu par le bot et par le pont" in said[0] and "(bot.password)" in said[0], \
        "the bot's password in a file the bridge reads too: the bridge would hold it"


def test_the_services_start_with_umask_077(tmp_path):
    """Before any file is written: the bot's and the bridge's `main` set it first (here, on a refused config)."""
    probe = ("import os, sys; from {m} import main; code = main(['-c', sys.argv[1]]); "
             "print(oct(os.umask(0)), code)")
    bad = tmp_path / "vide.yaml"
    bad.write_text("{}\n")
    for module in ("bot.__main__", "bridge.__main__"):
        run = subprocess.run([sys.executable, "-c", probe.format(m=module), str(bad)], capture_output=True,
                             text=True, timeout=60)
        assert run.stdout.split() == ["0o77", "2"], (module, run.stdout, run.stderr)
