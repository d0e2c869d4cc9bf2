"""Structured logs (structlog): readable in a terminal, JSON in production.

Log ids and counts only: never a message body, a patient's name, an INS or a file name. What slips through
anyway (an exception's message naming an address, a library's line) passes one scrubber before it is written:
mail addresses, INS-like numbers, puppets' user ids (they encode an address), access tokens, and the values
of keys that name something sensitive are masked.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

MASK = "[masqué]"

# What must never appear in a log line, by kind. The INS: 13 to 15 digits, or a NIR typed in groups
# ("1 48 05 75 123 456 78", Corsica's 2A/2B); timestamps logged as numbers are left alone (only text is read).
DETECTORS: dict[str, re.Pattern] = {
    "marionnette": re.compile(r"@mss_[^\s:'\",;)\]}]+(?::[A-Za-z0-9.-]+(?::\d+)?)?"),
    "adresse": re.compile(r"[A-Za-z0-9._%+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
                          r"|[A-Za-z0-9._-]+=40[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "ins": re.compile(r"(?<![\w.])(?:\d{13,15}|[1-478](?:[ .-]?\d\d){2}[ .-]?(?:\d\d|2[AB])(?:[ .-]?\d{3}){2}"
                      r"(?:[ .-]?\d\d)?)(?![\w.])", re.IGNORECASE),
    "jeton": re.compile(r"(?:access_token=|Bearer\s+)[^\s&\"']+|\bsy[tm]_[A-Za-z0-9_]+"),
}

# Keys whose value is masked whatever it holds.
SENSITIVE_KEYS = frozenset({
    "password", "passwd", "imap_password", "secret", "token", "access_token", "as_token", "hs_token",
    "pickle_key", "store_pickle_key", "anchor_key", "authorization", "subject", "filename", "file_name",
    "body", "text", "display_name", "from_name", "address", "mail_from", "rcpt", "ins", "patient",
    "patient_name", "birth_date",
})


def find_sensitive(text: str) -> list[str]:
    """The kinds of sensitive data found in `text` (empty when the line is clean)."""
    return [kind for kind, pattern in DETECTORS.items() if pattern.search(text)]


def scrub_text(text: str) -> str:
    for pattern in DETECTORS.values():
        text = pattern.sub(MASK, text)
    return text


def new_ref() -> str:
    """The one kind of reference Liaison gives for an error: short, random, the same in the reply and the log line."""
    return secrets.token_hex(4)


def digest(value: str) -> str:
    """A short stable hash of an id that must not be logged itself (a puppet's user id)."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def _clean(value):
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: MASK if str(k).lower() in SENSITIVE_KEYS else _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def scrub(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """The structlog processor: every value of the line, the event and the exception's text included."""
    return {k: v if k.startswith("_") else MASK if k.lower() in SENSITIVE_KEYS else _clean(v)
            for k, v in event_dict.items()}


def _log_uncaught(kind, value, tb) -> None:
    structlog.get_logger("liaison").error("process.uncaught", exc_info=(kind, value, tb))


def setup_logging(fmt: str = "console", level: str = "info", file: str = "") -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    # The scrubber runs in the formatter: on our lines and on the libraries' (stdlib logging) alike.
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, scrub, renderer],
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                           structlog.processors.format_exc_info],
    )
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        h.setFormatter(formatter)
        root.addHandler(h)
    root.setLevel(level.upper())
    # Libraries below us are chatty, and nio may log event contents at debug level.
    for noisy in ("nio", "peewee", "aiohttp", "asyncio", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    sys.excepthook = _log_uncaught   # a traceback that ends the process is scrubbed like the rest
