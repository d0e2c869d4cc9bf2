"""`liaison up`: the whole local stack in the foreground (Synapse, the bot, the MSSanté bridge and a local
mail gateway, demo accounts).

Data lives under `.liaison/` and is reused by the next run; `.liaison/stack.json` is
written once everything answers and removed on shutdown. The terminal shows one line per step; what each
process prints (Synapse, Dovecot, apt, the services' logs) goes to its file under `.liaison/logs/`.

The start order: the mail gateway, Synapse, then the bridge, then the bot. The bridge listens for the
homeserver's pushes before it first talks to it, and the bot is what invites it to rooms: started the other way
round, Synapse pushes to (and queries) a bridge that is not there yet, and logs refusals with stack traces.
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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    profession: str   # as the roster writes it: « infirmière » names her profession in the feminine
    coordinator: bool = False


DEMO_ACCOUNTS = (
    DemoAccount("coordinator", "coordination", "Claire Morel (coordinatrice)", "coordinatrice", coordinator=True),
    DemoAccount("gp", "medecin", "Dr Paul Martin (médecin généraliste)", "médecin"),
    DemoAccount("nurse", "infirmiere", "Sophie Bernard (infirmière)", "infirmière"),
    DemoAccount("pharmacist", "pharmacien", "Luc Petit (pharmacien)", "pharmacien"),
    DemoAccount("social_worker", "assistante.sociale", "Nadia Haddad (assistante sociale)", "assistante sociale"),
)
DEMO_STRUCTURE = "MSP de démonstration"
BOT_LOCALPART = "liaison"
# The variables the generated config names for the services' secrets: each service is given its own only.
SECRET_VARIABLES = frozenset({"LIAISON_BOT_PASSWORD", "LIAISON_BOT_STORE_KEY", "LIAISON_TRACE_KEY",
                              "LIAISON_BRIDGE_STORE_KEY", "LIAISON_MAIL_PASSWORD"})


def _say(text: str) -> None:
    print(f"[liaison] {text}", flush=True)


class Step:
    """What the progress line says once its step is done (`prêt` unless told otherwise)."""

    def __init__(self) -> None:
        self.outcome = "prêt"


@contextmanager
def step(label: str) -> Iterator[Step]:
    """One progress line: `[liaison] label… prêt`, or `… échec` when the step raises."""
    print(f"[liaison] {label}…", end=" ", flush=True)
    done = Step()
    try:
        yield done
    except KeyboardInterrupt:
        print("interrompu", flush=True)
        raise
    except BaseException:
        print("échec", flush=True)
        raise
    print(done.outcome, flush=True)


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
                               appservice_port=self._port("appservice-port"), console=False)
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

    def secrets_env(self, service: str) -> dict[str, str]:
        """The secrets the generated config names as ${VARIABLE}s (never written in it) that `service` reads: the bot
        its password, its store key and the trace's key; the bridge its store key and the mailbox's password."""
        if service == "bot":
            return {"LIAISON_BOT_PASSWORD": self.passwords[BOT_LOCALPART], "LIAISON_BOT_STORE_KEY": self.bot_store_key,
                    "LIAISON_TRACE_KEY": self.trace_key}
        return {"LIAISON_BRIDGE_STORE_KEY": self.bridge_store_key,
                "LIAISON_MAIL_PASSWORD": self.mail["bridge"]["imap_password"]}

    def env(self, service: str) -> dict[str, str]:
        """A service's environment: ours without any service's secret (one set by hand included), and its own."""
        mine = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
        return mine | self.secrets_env(service)

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
            # No log file: the bot writes to its stderr, which the stack points at logs/bot.log (with anything
            # printed before its logging is set up).
            "logging": {"format": "console", "level": "info"},
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
            # The trace's head, anchored next to the database (liaison trace verify sees a cut trace); its key is
            # the bot's only (the bridge is never given LIAISON_TRACE_KEY).
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
            "mailbox": {"address": box["address"], "display_name": DEMO_STRUCTURE, "imap": m["imap"],
                        "smtp": m["smtp"], "imap_user": box["imap_user"], "imap_password": "${LIAISON_MAIL_PASSWORD}",
                        "ca": m["ca"], "cert": box["cert"], "key": box["key"]},
        }

    def _log(self, name: str):
        """A process's stdout and stderr: its file under logs/, appended to from one run to the next."""
        return (self.logs / name).open("ab")

    def _spawn(self, command: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        with self._log(log) as out:   # the child keeps its own copy of the descriptor
            return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def _start_gateway(self) -> str:
        """The local MSSanté-like gateway (Dovecot + mutual-TLS SMTP), in its own process; Dovecot's installation
        and output land in its log."""
        ready = self.root / "mail.json"
        ready.unlink(missing_ok=True)
        self.gateway = self._spawn([sys.executable, "-m", "liaison.stack.mailgw", "--dir", str(self.root / "mail"),
                                    "--ready-file", str(ready), "--log-file", "-"], "mailgw.log")
        self._wait_for(ready, self.gateway, "la passerelle de messagerie", "mailgw.log", timeout=180)
        self.mail = json.loads(ready.read_text())
        return f"prête (SMTP {self.mail['smtp']['port']}, IMAP {self.mail['imap']['port']})"

    def _start_clamd(self) -> str:
        """ClamAV when the machine has it (Debian clamav-daemon); the documents are checked without it otherwise."""
        binary = find_clamd()
        if binary is None:
            return ("clamd absent (apt-get install clamav-daemon pour l'activer) ; les documents sont contrôlés "
                    "sans antivirus")
        system = official_signatures()
        self.clamd = start_clamd(binary, self.root / "clamd", system_signatures=system, timeout=180)
        return "clamd, " + ("signatures ClamAV de la machine" if system else
                            "signature de test EICAR seulement (lancez freshclam pour les vraies)")

    def _start_synapse(self) -> None:
        with self._log("synapse.log") as out:   # what Synapse prints before its logging is set up, or a crash
            self.synapse.start(stdout=out)
        self.synapse.register(BOT_LOCALPART, self.passwords[BOT_LOCALPART], displayname="Liaison")
        for a in DEMO_ACCOUNTS:
            self.synapse.register(a.localpart, self.passwords[a.localpart], displayname=a.display_name)

    def _wait_bridge_joined(self, timeout: float = 30) -> None:
        """Until the bridge's account is in a room: the first the bot invites it to is the quarantine room, where a
        stranger's mail goes (the appservice's token reads the bridge's rooms, the stack holds it)."""
        hs, user = self.synapse, f"@{BRIDGE_LOCALPART}:{self.synapse.server_name}"
        request = urllib.request.Request(
            f"{hs.url}/_matrix/client/v3/joined_rooms?user_id={urllib.parse.quote(user)}",
            headers={"Authorization": f"Bearer {hs.secrets.as_token}"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(request, timeout=5) as resp:
                if json.load(resp)["joined_rooms"]:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"le pont MSSanté n'a rejoint aucun salon ; voir {self.logs / 'bridge.log'}")

    def _wait_for(self, ready: Path, proc: subprocess.Popen, what: str, log: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} n'a pas démarré ; voir {self.logs / log}")
            time.sleep(0.1)

    def start(self) -> None:
        self.stack_file.unlink(missing_ok=True)
        _say(f"Démarrage de la pile locale ; journaux complets dans {self.logs}")
        with step("passerelle de messagerie MSSanté") as done:
            done.outcome = self._start_gateway()
        with step("antivirus") as done:
            done.outcome = self._start_clamd()
        with step("Synapse") as done:
            self._start_synapse()
            done.outcome = f"prêt sur {self.synapse.url}"
        config = str(self.bot_config())
        with step("pont MSSanté"):   # before the bot, which invites it: it is listening when Synapse pushes
            bridge_ready = self.root / "bridge.ready"
            bridge_ready.unlink(missing_ok=True)
            self.bridge = self._spawn([sys.executable, "-m", "bridge", "-c", config, "--ready-file",
                                       str(bridge_ready)], "bridge.log", self.env("bridge"))
            self._wait_for(bridge_ready, self.bridge, "le pont MSSanté", "bridge.log")
        with step("bot"):
            ready = self.root / "bot.ready"
            ready.unlink(missing_ok=True)
            self.bot = self._spawn(bot_command(config, "--ready-file", str(ready)), "bot.log", self.env("bot"))
            self._wait_for(ready, self.bot, "le bot", "bot.log")
            self._wait_bridge_joined()
        self._write_stack_file()

    def _write_stack_file(self) -> None:
        hs, bot, bridge = self.synapse, self.bot, self.bridge
        assert bot is not None and bridge is not None, "written once both are started"
        stack: dict[str, Any] = {
            "version": STACK_VERSION,
            "homeserver": {"url": hs.url, "server_name": hs.server_name},
            "bot": {"user_id": f"@{BOT_LOCALPART}:{hs.server_name}", "pid": bot.pid},
            "accounts": [
                {"role": a.role, "user_id": f"@{a.localpart}:{hs.server_name}", "password": self.passwords[a.localpart],
                 "display_name": a.display_name}
                for a in DEMO_ACCOUNTS
            ],
            "appservice": {"id": APPSERVICE_ID, "registration": str(hs.appservice_path),
                           "puppet_prefix": f"@{PUPPET_PREFIX}"},
            "bridge": {"user_id": f"@{BRIDGE_LOCALPART}:{hs.server_name}", "pid": bridge.pid},
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
            for stopped, proc in (("le bot s'est arrêté", self.bot), ("le pont MSSanté s'est arrêté", self.bridge),
                                  ("la passerelle de messagerie s'est arrêtée", self.gateway)):
                if proc is not None and proc.poll() is not None:
                    _say(f"{stopped} (code {proc.returncode})")
                    return 1
            synapse = self.synapse.process
            if synapse is not None and synapse.poll() is not None:
                _say(f"Synapse s'est arrêté (code {synapse.returncode})")
                return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """In the reverse order of the start: the bot first, so nothing it sends is pushed to a bridge gone."""
        self.stack_file.unlink(missing_ok=True)
        for proc in (self.bot, self.bridge):
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
    except (RuntimeError, TimeoutError) as err:   # a step that failed: its sentence names its log
        _say(str(err))
        return 1
    finally:
        stack.stop()
