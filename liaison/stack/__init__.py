"""The local stack: a real Synapse and the services, on loopback."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys


def bot_command(config: str, *extra: str) -> list[str]:
    """How the bot is started, here and in production.

    -OO drops docstrings and asserts from every loaded module: about 6 MiB less resident
    memory for a process that idles most of the day (SQLAlchemy's docstrings alone are large).
    """
    return [sys.executable, "-OO", "-m", "bot", "-c", config, *extra]


def port_free(port: int) -> bool:
    """Nobody listens on this loopback port. A port left in TIME_WAIT by our own last run counts as free,
    as it does for the servers themselves (Twisted and aiohttp bind with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
    """Ask a child to stop (SIGTERM by default), kill it after `timeout`; its exit code."""
    if proc is None:
        return 0
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
