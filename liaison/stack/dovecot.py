"""A self-contained Dovecot (IMAPS + LMTP) for the local stack and the tests.

Everything lives under one directory (config, sockets, state, maildirs, log), so two
instances can run side by side; /etc/dovecot is never read. IMAP is implicit TLS only
and requires a client certificate from the test CA, like an MSSanté operator.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from liaison.stack import stop_process

log = structlog.get_logger(__name__)

MAIL_USER = "mail"  # an unprivileged system user: Dovecot refuses mail access as root


def find_dovecot() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    for candidate in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_dovecot_installed() -> str:
    """Path of the `dovecot` binary, installing the Debian packages when missing."""
    found = find_dovecot()
    if found:
        return found
    log.info("dovecot.install")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run("apt-get update -qq && apt-get install -y -qq dovecot-imapd dovecot-lmtpd",
                   shell=True, check=True, env=env)
    found = find_dovecot()
    if not found:
        raise RuntimeError("dovecot est introuvable après installation")
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_stale(data_dir: Path) -> None:
    """Stop a Dovecot left running on `data_dir` by a killed gateway (it holds the port and base_dir)."""
    data_dir = Path(data_dir).resolve()
    try:
        pid = int((data_dir / "run" / "master.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(data_dir / "dovecot.conf").encode() not in cmdline or not _alive(pid):
        return
    log.warning("dovecot.stale_stopped", pid=pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _hash_password(password: str) -> str:
    # SHA512-CRYPT through the stdlib would need `crypt` (deprecated); PLAIN is fine for a test server.
    return "{PLAIN}" + password


@dataclass
class Dovecot:
    """One Dovecot process; `users` maps a full address to its IMAP password."""

    data_dir: Path
    ca_file: Path
    cert_file: Path
    key_file: Path
    imap_port: int
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def config_path(self) -> Path:
        return self.data_dir / "dovecot.conf"

    @property
    def lmtp_socket(self) -> Path:
        return self.data_dir / "run" / "lmtp"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "dovecot.log"

    def _check_reachable(self) -> None:
        """Dovecot's unprivileged processes must walk down to `data_dir` (a 0700 parent stops them)."""
        for parent in self.data_dir.parents:
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(f"{parent} n'est pas traversable par les processus de Dovecot (droits "
                                   f"{oct(parent.stat().st_mode & 0o777)}) : choisissez un autre répertoire "
                                   "ou faites `chmod o+x` sur ce dossier")

    def write_config(self) -> None:
        d = self.data_dir
        self._check_reachable()
        mail = pwd.getpwnam(MAIL_USER)
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chown(d / "mail", mail.pw_uid, mail.pw_gid)
        # The login, auth and mail processes run unprivileged: they must walk through this directory (not list
        # it) and reach their sockets; the mailboxes are the mail user's only, the state root's.
        d.chmod(0o711)
        (d / "run").chmod(0o755)
        (d / "mail").chmod(0o700)
        (d / "state").chmod(0o700)
        passwd = d / "passwd"
        passwd.write_text("".join(f"{user}:{_hash_password(pw)}::::::\n" for user, pw in self.users.items()))
        passwd.chmod(0o640)
        os.chown(passwd, 0, pwd.getpwnam("dovecot").pw_gid)
        self.config_path.write_text(_CONFIG.format(
            dir=d, port=self.imap_port, ca=self.ca_file, cert=self.cert_file, key=self.key_file,
            uid=mail.pw_uid, gid=mail.pw_gid, instance=f"liaison-{self.imap_port}"))

    def start(self, timeout: float = 15.0) -> None:
        binary = ensure_dovecot_installed()
        stop_stale(self.data_dir)
        self.write_config()
        self.lmtp_socket.unlink(missing_ok=True)
        out = (self.data_dir / "dovecot.stdout").open("ab")
        self.process = subprocess.Popen([binary, "-F", "-c", str(self.config_path)],
                                        stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot s'est arrêté (code {self.process.returncode}) ; "
                                   f"voir {self.log_path} et {out.name}")
            if self._answers():
                log.info("dovecot.started", port=self.imap_port, pid=self.process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"dovecot ne répond pas sur 127.0.0.1:{self.imap_port} ; voir {self.log_path}")

    def _answers(self) -> bool:
        if not self.lmtp_socket.exists():
            return False
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    return tls.recv(64).startswith(b"* OK")
        except (OSError, ssl.SSLError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        stop_process(self.process, timeout=timeout)
        log.info("dovecot.stopped", port=self.imap_port)
        self.process = None


_CONFIG = """\
# Generated by liaison.stack.dovecot: a test server, not a production config.
instance_name = {instance}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
debug_log_path = {dir}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
shutdown_clients = yes

ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_ca = <{ca}
ssl_verify_client_cert = yes
ssl_require_crl = no
ssl_min_protocol = TLSv1.2
auth_ssl_require_client_cert = yes
auth_mechanisms = plain login
disable_plaintext_auth = yes
# A test server: no delay or penalty after a failed login (refusal tests would slow every later login).
auth_failure_delay = 0
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no

first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{dir}/mail/%u
mail_home = {dir}/mail/%u

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}

namespace inbox {{
  inbox = yes
  separator = /
}}

service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
"""
