"""`liaison up`: the whole local stack in the foreground (Synapse, the bot, the MSSanté bridge and a local
mail gateway, demo accounts).

Data lives under `.liaison/` and is reused by the next run; `.liaison/stack.json` is
written once everything answers and removed on shutdown.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from liaison.private import private_dir, restrict_umask, tighten, write_private
from liaison.stack import bot_command, port_free, stop_process
from liaison.stack.clamd import ClamdProcess, find_clamd, official_signatures, start_clamd
from liaison.stack.synapse import APPSERVICE_ID, PUPPET_PREFIX, Synapse, free_port

STACK_VERSION = 1
TRUST_LIST = Path(__file__).resolve().parents[2] / "deploy" / "mssante" / "liste-blanche-demo.xml"
BRIDGE_LOCALPART = PUPPET_PREFIX + "relais"


@dataclass(frozen=True)
class DemoAccount:
    role: str
    localpart: str
    display_name: str
    profession: str
    coordinator: bool = False


DEMO_ACCOUNTS = (
    DemoAccount("coordinator", "coordination", "Claire Morel (coordinatrice)", "coordinateur", coordinator=True),
    DemoAccount("gp", "medecin", "Dr Paul Martin (médecin généraliste)", "médecin"),
    DemoAccount("nurse", "infirmiere", "Sophie Bernard (infirmière)", "infirmier"),
    DemoAccount("pharmacist", "pharmacien", "Luc Petit (pharmacien)", "pharmacien"),
    DemoAccount("social_worker", "assistante.sociale", "Nadia Haddad (assistante sociale)", "assistant de service social"),
)
DEMO_STRUCTURE = "MSP de démonstration"
BOT_LOCALPART = "liaison"


def _say(text: str) -> None:
    print(f"[liaison] {text}", flush=True)


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # Others may walk through it (Dovecot's unprivileged processes reach mail/), not list it; what it
        # holds is ours only. Files written before umask 077 (an older run) are tightened first.
        self.root.chmod(0o711)
        tighten(self.root.iterdir())
        self.logs = private_dir(self.root / "logs")
        self.stack_file = self.root / "stack.json"
        self.passwords = self._passwords()
        self.trace_key = self._secret("trace-anchor.key")           # signs the trace's anchors
        self.bot_store_key = self._secret("bot-store.key")          # encrypts the bot's end-to-end keys
        self.bridge_store_key = self._secret("bridge-store.key")    # and the bridge's and its puppets'
        self.synapse = Synapse(self.root / "synapse", port=self._port("port"), log_dir=self.logs,
                               appservice_port=self._port("appservice-port"))
        self.bot: subprocess.Popen | None = None
        self.bridge: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        self.clamd: ClamdProcess | None = None
        self.mail: dict = {}

    def _passwords(self) -> dict[str, str]:
        path = self.root / "accounts.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        for name in [BOT_LOCALPART, *(a.localpart for a in DEMO_ACCOUNTS)]:
            known.setdefault(name, secrets.token_urlsafe(9))
        write_private(path, json.dumps(known, indent=2))
        return known

    def _secret(self, name: str) -> str:
        """A key made once and kept (like the passwords, readable by us only)."""
        path = self.root / name
        if not path.exists():
            write_private(path, secrets.token_hex(32))
        path.chmod(0o600)
        return path.read_text().strip()

    def secrets_env(self) -> dict[str, str]:
        """The keys the generated config names as ${VARIABLE}s (never written in it)."""
        return {"LIAISON_TRACE_KEY": self.trace_key, "LIAISON_BOT_STORE_KEY": self.bot_store_key,
                "LIAISON_BRIDGE_STORE_KEY": self.bridge_store_key}

    def _port(self, name: str) -> int:
        """Keep a port from one run to the next, so clients need no new address."""
        path = self.root / name
        if path.exists() and port_free(int(path.read_text())):
            return int(path.read_text())
        port = free_port()
        path.write_text(str(port))
        return port

    def bot_config(self) -> Path:
        hs = self.synapse
        cfg = {
            "homeserver": {"url": hs.url, "server_name": hs.server_name},
            "bot": {
                "user_id": f"@{BOT_LOCALPART}:{hs.server_name}",
                "password": "${LIAISON_BOT_PASSWORD}",
                "staff": [f"@{a.localpart}:{hs.server_name}" for a in DEMO_ACCOUNTS],
                "store_dir": "bot-store",
                "store_pickle_key": "${LIAISON_BOT_STORE_KEY}",
            },
            "database": {"url": "sqlite+aiosqlite:///liaison.db"},
            "logging": {"format": "console", "level": "info", "file": str(self.logs / "bot.log")},
            "structure": DEMO_STRUCTURE,
            "roster": [
                {"user_id": f"@{a.localpart}:{hs.server_name}", "name": a.display_name.split(" (")[0],
                 "profession": a.profession, "structure": DEMO_STRUCTURE, "coordinator": a.coordinator}
                for a in DEMO_ACCOUNTS
            ],
            # The demo's patients are fictitious: the INS test OIDs are accepted.
            "pathways": {"ins_test_mode": True},
            "bridge": self._bridge_section(),
            "documents": {"clamd_socket": self.clamd.socket_path if self.clamd else ""},
            # The trace's head, anchored next to the database (liaison trace verify sees a cut trace).
            "trace": {"anchor_file": "trace-anchors.jsonl", "anchor_key": "${LIAISON_TRACE_KEY}"},
        }
        path = self.root / "liaison.yaml"
        write_private(path, "# Généré par `liaison up` pour la pile locale ; voir deploy/liaison.example.yaml.\n"
                      + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
        return path

    def _bridge_section(self) -> dict:
        m, box = self.mail, self.mail["bridge"]
        return {
            "user_id": f"@{BRIDGE_LOCALPART}:{self.synapse.server_name}",
            "registration": str(self.synapse.appservice_path),
            "listen_port": self.synapse.appservice_port,
            "store_dir": "bridge-store",
            "store_pickle_key": "${LIAISON_BRIDGE_STORE_KEY}",
            "trusted_domains_file": str(TRUST_LIST),
            "log_file": str(self.logs / "bridge.log"),
            "mailbox": {"address": box["address"], "display_name": DEMO_STRUCTURE, "imap": m["imap"],
                        "smtp": m["smtp"], "imap_user": box["imap_user"], "imap_password": "${LIAISON_MAIL_PASSWORD}",
                        "ca": m["ca"], "cert": box["cert"], "key": box["key"]},
        }

    def _start_gateway(self) -> None:
        """The local MSSanté-like gateway (Dovecot + mutual-TLS SMTP), in its own process."""
        ready = self.root / "mail.json"
        ready.unlink(missing_ok=True)
        self.gateway = subprocess.Popen([sys.executable, "-m", "liaison.stack.mailgw", "--dir", str(self.root / "mail"),
                                         "--ready-file", str(ready), "--log-file", str(self.logs / "mailgw.log")])
        self._wait_for(ready, self.gateway, "la passerelle de messagerie", "mailgw.log", timeout=180)
        self.mail = json.loads(ready.read_text())
        _say(f"passerelle MSSanté : SMTP {self.mail['smtp']['port']}, IMAP {self.mail['imap']['port']}")

    def _start_clamd(self) -> None:
        """ClamAV when the machine has it (Debian clamav-daemon); the documents are checked without it otherwise."""
        binary = find_clamd()
        if binary is None:
            _say("antivirus : clamd absent (apt-get install clamav-daemon pour l'activer) ; les documents sont "
                 "contrôlés sans antivirus")
            return
        system = official_signatures()
        self.clamd = start_clamd(binary, self.root / "clamd", system_signatures=system, timeout=180)
        _say("antivirus : clamd, " + ("signatures ClamAV de la machine" if system else
                                      "signature de test EICAR seulement (lancez freshclam pour les vraies)"))

    def _wait_for(self, ready: Path, proc: subprocess.Popen, what: str, log: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} n'a pas démarré ; voir {self.logs / log}")
            time.sleep(0.1)

    def start(self) -> None:
        self.stack_file.unlink(missing_ok=True)
        self._start_gateway()
        self._start_clamd()
        _say(f"Synapse sur {self.synapse.url} (données : {self.synapse.data_dir})")
        self.synapse.start()
        self.synapse.register(BOT_LOCALPART, self.passwords[BOT_LOCALPART], displayname="Liaison")
        for a in DEMO_ACCOUNTS:
            self.synapse.register(a.localpart, self.passwords[a.localpart], displayname=a.display_name)
        ready = self.root / "bot.ready"
        ready.unlink(missing_ok=True)
        env = dict(os.environ, LIAISON_BOT_PASSWORD=self.passwords[BOT_LOCALPART],
                   LIAISON_MAIL_PASSWORD=self.mail["bridge"]["imap_password"], **self.secrets_env())
        config = str(self.bot_config())
        self.bot = subprocess.Popen(bot_command(config, "--ready-file", str(ready)), env=env)
        self._wait_for(ready, self.bot, "le bot", "bot.log")
        bridge_ready = self.root / "bridge.ready"
        bridge_ready.unlink(missing_ok=True)
        self.bridge = subprocess.Popen([sys.executable, "-m", "bridge", "-c", config, "--ready-file",
                                        str(bridge_ready)], env=env)
        self._wait_for(bridge_ready, self.bridge, "le pont MSSanté", "bridge.log")
        self._write_stack_file()

    def _write_stack_file(self) -> None:
        hs = self.synapse
        stack = {
            "version": STACK_VERSION,
            "homeserver": {"url": hs.url, "server_name": hs.server_name},
            "bot": {"user_id": f"@{BOT_LOCALPART}:{hs.server_name}", "pid": self.bot.pid},
            "accounts": [
                {"role": a.role, "user_id": f"@{a.localpart}:{hs.server_name}", "password": self.passwords[a.localpart],
                 "display_name": a.display_name}
                for a in DEMO_ACCOUNTS
            ],
            "appservice": {"id": APPSERVICE_ID, "registration": str(hs.appservice_path),
                           "puppet_prefix": f"@{PUPPET_PREFIX}"},
            "bridge": {"user_id": f"@{BRIDGE_LOCALPART}:{hs.server_name}", "pid": self.bridge.pid},
            "mail": {k: v for k, v in self.mail.items() if k != "pid"},
            "documents": {"clamd_socket": self.clamd.socket_path if self.clamd else None},
            "logs": str(self.logs),
        }
        write_private(self.stack_file, json.dumps(stack, indent=2, ensure_ascii=False))
        _say("Pile prête. Connectez-vous avec n'importe quel client Matrix (Element…) :")
        _say(f"  serveur : {hs.url}")
        for a in stack["accounts"]:
            _say(f"  {a['display_name']:<40} {a['user_id']:<42} mot de passe : {a['password']}")
        _say(f"  le bot : {stack['bot']['user_id']} (invitez-le dans un salon, puis tapez !aide)")
        _say(f"  messagerie MSSanté de la structure : {self.mail['bridge_address']} ; correspondants de "
             f"démonstration : {', '.join(x['address'] for x in self.mail['externals'])} (clés dans {self.root / 'mail'})")
        _say(f"Fichier de la pile : {self.stack_file} ; journaux : {self.logs}. Ctrl-C pour arrêter.")

    def wait(self) -> int:
        stopping = {"sig": None}

        def on_signal(signum, _frame):
            stopping["sig"] = signum

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while stopping["sig"] is None:
            if self.bot.poll() is not None:
                _say(f"le bot s'est arrêté (code {self.bot.returncode})")
                return 1
            for name, proc in (("le pont MSSanté", self.bridge), ("la passerelle de messagerie", self.gateway)):
                if proc.poll() is not None:
                    _say(f"{name} s'est arrêté(e) (code {proc.returncode})")
                    return 1
            if self.synapse.process.poll() is not None:
                _say(f"Synapse s'est arrêté (code {self.synapse.process.returncode})")
                return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        self.stack_file.unlink(missing_ok=True)
        for proc in (self.bridge, self.bot):
            stop_process(proc)
        self.synapse.stop()
        stop_process(self.gateway)
        if self.clamd:
            self.clamd.stop()
            shutil.rmtree(Path(self.clamd.socket_path).parent, ignore_errors=True)
        _say("Pile arrêtée ; les données restent dans " + str(self.root))


def up(root: Path) -> int:
    restrict_umask()   # everything the stack writes, and its processes (they inherit it), is the owner's only
    stack = Stack(root)
    try:
        stack.start()
        return stack.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
