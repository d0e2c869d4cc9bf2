"""Wiring: read the config, build the adapters (liaison/bootstrap.py), hand them to the bot, run its loops in one
lifecycle (liaison/lifecycle.py) until SIGINT/SIGTERM."""
from __future__ import annotations

from liaison import memory

memory.limit_arenas()   # before any library starts a thread

import asyncio
import sys
from pathlib import Path
from collections.abc import Awaitable, Callable

import structlog

from bot.app import Bot, BotSettings
from bot.archive import Archiver
from bot.bridge_setup import prepare_bridge
from bot.commands import build_registry
from bot.documents import DocumentIndexer
from bot.expiries import ConsentExpiries
from bot.newcomers import Newcomers
from bot.protocols import DEFAULT_OFFERS, ProtocolError, load_protocols, type_offers
from bot.reminders import TaskReminders
from bot.services import PathwaySettings, Services
from bot.store import BotStore
from bot.watch import MembershipWatch
from liaison import lifecycle
from liaison.bootstrap import antivirus_of, shared_stores
from liaison.clock import Clock, SystemClock
from liaison.config import ConfigError, load_config, policy_text
from liaison.db import DatabaseTooNew
from liaison.directory.folder import DAY_SECONDS, import_folder
from liaison.lifecycle import Lifecycle, stop_on_signals, when_ready
from liaison.logs import setup_logging
from liaison.matrix import Matrix
from liaison.matrix.crypto_store import prepare_stores
from liaison.private import bot_owned, tighten_at_start
from liaison.trace_anchor import AnchorFile, Anchorer
from liaison.trusted import TrustedListError
from policies.knobs import KnobError, load_knobs
from policies.pathway import PATHWAY_TYPES

log = structlog.get_logger("bot")
EXPIRY_CHECK_SECONDS = 60   # a consent ends at the end of its day: applied within the minute


async def _after_first_sync(bot: Bot, work: Callable[[], Awaitable[object]]) -> None:
    """`work` once the bot has synced (then the loop stays, quiet, until the stop: a return would be a restart)."""
    await bot.ready.wait()
    await work()
    await asyncio.Event().wait()


async def _after_ready(bot: Bot, job: Callable[[], Awaitable[object]]) -> None:
    """A job that speaks to the homeserver runs once the bot has logged in and synced."""
    await bot.ready.wait()
    await job()


async def serve(config_path: str, ready_file: str | None = None, clock: Clock | None = None) -> int:
    """The bot until it is stopped; `clock` is the wall clock unless a test hands over one it moves."""
    cfg = load_config(config_path, for_services={"bot"})   # its own secrets only, never the bridge's
    load_knobs(policy_text(cfg.policy_file))   # a bad policy file stops the start-up, naming its line, before logs
    protocols = load_protocols(cfg.pathways.protocols_folder)   # so does a bad protocol file: its line and field
    offers = (type_offers(((t.key, t.protocol) for t in cfg.pathways.types), protocols) if cfg.pathways.types
              else DEFAULT_OFFERS)
    setup_logging(cfg.logging.format, cfg.logging.level, cfg.logging.file)
    tighten_at_start(bot_owned(cfg))
    await prepare_stores([cfg.bot.store_dir], cfg.bot.store_pickle_key, "bot.store_pickle_key")
    clock = clock or SystemClock()
    shared = await shared_stores(cfg, clock, load_roster=True)
    knobs = shared.knobs
    matrix = Matrix(cfg.homeserver.url, cfg.bot.user_id, cfg.bot.store_dir, cfg.bot.device_name,
                    pickle_key=cfg.bot.store_pickle_key, federate=knobs.rooms_federate)
    services = Services.of(shared, matrix, PathwaySettings(
        server_name=cfg.homeserver.server_name, bot_user_id=cfg.bot.user_id, naming=knobs.room_naming,
        ins_test_mode=cfg.pathways.ins_test_mode, retention_days=knobs.retention_days_after_closure,
        types=tuple((t.key, t.label) for t in cfg.pathways.types) or PATHWAY_TYPES,
        bridge_user_id=cfg.bridge.user_id if cfg.bridge else None, protocols=protocols, offers=offers,
        rcp_agenda_days=cfg.pathways.rcp_agenda_days),
        antivirus_of(cfg))
    indexer = DocumentIndexer(services)
    newcomers = Newcomers(services)
    store = BotStore(shared.engine, clock)
    bot = Bot(matrix, store, build_registry(),
              BotSettings(password=cfg.bot.password, staff=frozenset(cfg.bot.staff)),
              services, MembershipWatch(services).handle, indexer.handle, newcomers.handle)

    life = Lifecycle("bot", clock)
    life.add("sync", bot.run, vital=True)   # the bot is nothing without its sync: its end stops the service
    life.every("archive", cfg.pathways.archive_interval_seconds, Archiver(services, store).run_once)
    expiries = ConsentExpiries(services)
    life.every("consent-expiries", EXPIRY_CHECK_SECONDS, lambda: _after_ready(bot, expiries.run_once))
    reminders = TaskReminders(services, cfg.pathways.task_reminder_hour)
    life.add("task-reminders", lambda: _after_ready(bot, reminders.run))   # sleeps until each reminder's moment
    life.add("rcp-agendas", lambda: _after_ready(bot, services.agendas.run))   # each RCP's agenda, N days before
    anchorer = (Anchorer(services.trace, AnchorFile(cfg.trace.anchor_file, cfg.trace.anchor_key), clock)
                if cfg.trace else None)
    if anchorer and cfg.trace:
        life.every("anchor", cfg.trace.anchor_interval_seconds, anchorer.anchor_safely)
    if cfg.bridge:
        life.add("bridge-rooms", lambda: _after_first_sync(bot, lambda: prepare_bridge(services)))
    life.add("documents-resume", lambda: _after_first_sync(bot, indexer.resume))
    life.add("boards-catch-up", lambda: _after_first_sync(bot, services.boards.catch_up))
    life.add("plans-catch-up", lambda: _after_first_sync(bot, services.plans.catch_up))
    if cfg.directory.folder:   # the Annuaire Santé's extracts dropped there, imported once a day
        folder = Path(cfg.directory.folder)
        life.every("directory-import", DAY_SECONDS, lambda: import_folder(shared.engine, folder, clock),
                   first_after_s=60)
    when_ready(life, bot.ready, ready_file)
    # The stop, in the reverse order of these lines: the replies drained, the head anchored, the clients closed.
    life.on_stop("database", shared.close)
    life.on_stop("matrix", matrix.close)
    if anchorer:
        life.on_stop("anchor", lambda: anchorer.anchor_safely() if life.exit_code == 0 else _nothing())
    life.on_stop("drain", lambda: _drain(bot, indexer, newcomers) if life.exit_code == 0 else _nothing())
    stop_on_signals(life)
    code = await life.run()
    log.info("bot.stopped", code=code)
    return code


async def _drain(bot: Bot, indexer: DocumentIndexer, newcomers: Newcomers) -> None:
    await bot.drain()
    await indexer.drain()
    await newcomers.drain()


async def _nothing() -> None:
    return None


def main(argv: list[str] | None = None) -> int:
    return lifecycle.main("python -m bot", "Le bot Liaison.", "fichier de configuration YAML", serve,
                          (ConfigError, DatabaseTooNew, KnobError, TrustedListError, ProtocolError), argv)


if __name__ == "__main__":
    sys.exit(main())
