"""A clamd of our own for the local stack and the tests: its own config, socket and signatures.

clamd starts with any signature database; `freshclam` is not needed (nor reachable offline). With
no official database on the machine, the only signature is the EICAR test file's, detected by its
MD5 (`.hdb` line `md5:size:Name`) and reported as `Liaison.Test.EICAR.UNOFFICIAL`: enough to show
and test a refusal, not a real protection (`liaison up` says so).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# The 68-byte EICAR antivirus test string, in two halves so this source file is not itself flagged.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-" + b"STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
SIGNATURE = "Liaison.Test.EICAR"
REPORTED = f"{SIGNATURE}.UNOFFICIAL"   # how clamd names a signature from a non-official database
assert len(EICAR) == 68 and hashlib.md5(EICAR).hexdigest() == EICAR_MD5


def find_clamd() -> str | None:
    found = shutil.which("clamd")
    if found:
        return found
    return "/usr/sbin/clamd" if os.access("/usr/sbin/clamd", os.X_OK) else None


def ensure_clamd_installed() -> str:
    """The clamd binary, installing the Debian package clamav-daemon when missing."""
    found = find_clamd()
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "clamav-daemon"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = find_clamd()
    if not found:
        raise RuntimeError("clamd introuvable après apt-get install clamav-daemon")
    return found


@dataclass
class ClamdProcess:
    root: Path
    socket_path: str
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _config(db: Path, sock: str, log: Path) -> str:
    lines = [f"DatabaseDirectory {db}", f"LocalSocket {sock}", "Foreground yes", f"LogFile {log}",
             "LogTime yes", f"TemporaryDirectory {db.parent}",
             # Room for the largest document a policy may allow (document_max_mib ≤ 200).
             "StreamMaxLength 256M", "MaxFileSize 256M", "MaxScanSize 512M"]
    if os.geteuid() == 0:
        lines.append("User root")
    return "\n".join(lines) + "\n"


def ping_sync(socket_path: str, timeout: float = 1.0) -> bool:
    """zPING without an event loop (usable from sync and async fixtures alike)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(socket_path)
            s.sendall(b"zPING\0")
            return s.recv(64).split(b"\0", 1)[0] == b"PONG"
    except OSError:
        return False


def _wait_ready(clamd: ClamdProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = clamd.process
        assert process is not None, "started before it is waited for"
        if process.poll() is not None:
            raise RuntimeError(f"clamd s'est arrêté au démarrage (code {process.returncode}) :\n"
                               f"{clamd.log_text()[-2000:]}")
        if os.path.exists(clamd.socket_path) and ping_sync(clamd.socket_path):
            return
        time.sleep(0.1)
    raise RuntimeError(f"clamd ne répond pas après {timeout:g} s :\n{clamd.log_text()[-2000:]}")


SYSTEM_DB = Path("/var/lib/clamav")


def official_signatures(db: Path = SYSTEM_DB) -> bool:
    """Whether the machine has ClamAV's own databases (freshclam ran once: main/daily .cvd or .cld)."""
    return any(db.glob("*.cvd")) or any(db.glob("*.cld"))


def start_clamd(binary: str, root: Path, *, system_signatures: bool = False, timeout: float = 60.0) -> ClamdProcess:
    """Start clamd under `root` on a short unix socket; the EICAR signature only unless `system_signatures`."""
    sock_dir = tempfile.mkdtemp(prefix="clamd-", dir="/tmp")   # unix socket paths must stay short
    if system_signatures:
        db = SYSTEM_DB
    else:
        db = root / "db"
        db.mkdir(parents=True, exist_ok=True)
        (db / "liaison-test.hdb").write_text(f"{EICAR_MD5}:{len(EICAR)}:{SIGNATURE}\n")
    clamd = ClamdProcess(root, os.path.join(sock_dir, "clamd.sock"), root / "clamd.log")
    conf = root / "clamd.conf"
    conf.write_text(_config(db, clamd.socket_path, clamd.log_path))
    clamd.process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(clamd, timeout)
    except BaseException:
        clamd.stop()
        raise
    return clamd


@contextmanager
def running_clamd(workdir: Path | None = None, *, timeout: float = 60.0) -> Iterator[ClamdProcess]:
    """A clamd with the EICAR signature only, installing clamav-daemon if needed; stopped and cleaned up after."""
    binary = ensure_clamd_installed()
    made = workdir is None
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="liaison-clamd-"))
    clamd = start_clamd(binary, root, timeout=timeout)
    try:
        yield clamd
    finally:
        clamd.stop()
        shutil.rmtree(Path(clamd.socket_path).parent, ignore_errors=True)
        if made:
            shutil.rmtree(root, ignore_errors=True)
