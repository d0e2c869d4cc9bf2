"""Shared fixtures: a real Synapse for the session, the real bot as a process, clinicians."""
from __future__ import annotations

import itertools
import os
import secrets

import pytest
import yaml
from pathlib import Path

from liaison.db import open_database
from liaison.stack.synapse import Synapse
from tests.support.botproc import BotProcess
from tests.support.bridgeproc import BridgeProcess
from tests.support.clinician import Clinician
from tests.support.clamd import running_clamd
from tests.support.mailgw import running_gateway


@pytest.fixture(autouse=True)
def _umask_restored():
    """A test that runs a service's `main()` in-process sets its umask 077 (liaison/lifecycle.py) for the whole
    session: the tests after it would then see other modes than they set up. Each test gets the umask it started
    with back."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)

_names = itertools.count(1)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory):
    hs = Synapse(tmp_path_factory.mktemp("synapse"))
    hs.start()
    yield hs
    hs.stop()


@pytest.fixture
def new_user(synapse):
    """Register a fresh account: returns (user_id, password)."""
    def make(prefix: str = "user", displayname: str | None = None) -> tuple[str, str]:
        password = secrets.token_urlsafe(12)
        user_id = synapse.register(f"{prefix}{next(_names)}", password, displayname=displayname)
        return user_id, password
    return make


@pytest.fixture
async def clinician(synapse, new_user, tmp_path):
    made: list[Clinician] = []

    async def make(prefix: str = "clinicien") -> Clinician:
        user_id, password = new_user(prefix)
        c = Clinician(synapse.url, user_id, password, tmp_path / f"store-{user_id[1:].split(':')[0]}")
        made.append(await c.start())
        return c
    yield make
    for c in made:
        await c.stop()


@pytest.fixture
def bot_process(synapse, new_user, tmp_path):
    made: list[BotProcess] = []

    def make(staff: list[str], database_url: str = "", **extra) -> BotProcess:
        user_id, password = new_user("liaison")
        bot = BotProcess(tmp_path / f"bot{len(made)}", synapse.url, synapse.server_name, user_id,
                         password, staff, database_url, extra)
        made.append(bot)
        return bot.start()
    yield make
    for b in made:
        b.stop()


@pytest.fixture(scope="session")
def mail_gateway():
    """The local MSSanté-like gateway (Dovecot + mutual-TLS SMTP), once for the session."""
    with running_gateway() as gateway:
        yield gateway


@pytest.fixture(scope="session")
def clamd_daemon():
    """A real clamd (Debian clamav-daemon) with the EICAR test signature, once for the session."""
    with running_clamd() as daemon:
        yield daemon


@pytest.fixture
def bridge_process():
    """Start the bridge on a bot's config file (which must carry a `bridge:` section)."""
    made: list[BridgeProcess] = []

    def make(bot: BotProcess) -> BridgeProcess:
        log_file = yaml.safe_load(bot.config_path.read_text())["bridge"]["log_file"]
        bridge = BridgeProcess(bot.config_path, Path(log_file))   # none of the bot's secrets: it reads its own only
        made.append(bridge)
        return bridge.start()
    yield make
    for b in made:
        b.stop()


@pytest.fixture
async def engine(db_url):
    """A migrated database on SQLite and on PostgreSQL (see db_url)."""
    eng = await open_database(db_url)
    yield eng
    await eng.dispose()


def pg_url() -> str | None:
    return os.environ.get("LIAISON_TEST_PG_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request, tmp_path):
    """A fresh empty database URL, on SQLite and on PostgreSQL (LIAISON_TEST_PG_URL)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    base = pg_url()
    if not base:   # the PostgreSQL half of a database test is never silently skipped
        pytest.fail("LIAISON_TEST_PG_URL is not set: run `make test`, which starts a throw-away PostgreSQL")
    import asyncpg

    name = f"t_{secrets.token_hex(6)}"
    dsn = base.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()
