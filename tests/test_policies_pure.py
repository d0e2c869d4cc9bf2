"""policies/ stays pure: no I/O library may be imported there."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from policies.bot import bot_may_join

FORBIDDEN = {"nio", "aiohttp", "sqlalchemy", "aiosqlite", "asyncpg", "smtplib", "aiosmtplib", "aioimaplib",
             "imaplib", "socket", "requests", "httpx", "urllib", "subprocess", "asyncio", "os", "io",
             "pathlib", "shutil", "structlog", "logging", "liaison", "bot", "bridge"}


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "policies").rglob("*.py")),
                         ids=lambda p: p.name)
def test_policies_module_imports_no_io(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


@pytest.mark.parametrize("inviter, allowed, rule", [
    ("@coord:hs", True, "bot.invite.staff"),
    ("@stranger:hs", False, "bot.invite.not_staff"),
    (None, False, "bot.invite.malformed"),
])
def test_bot_joins_only_on_staff_invites(inviter, allowed, rule):
    decision = bot_may_join(inviter, {"@coord:hs"})
    assert decision.allowed is allowed and decision.rule == rule and decision.reason
