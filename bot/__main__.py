"""Wiring: read the config, build the adapters, hand them to the bot, run until SIGINT/SIGTERM."""
from __future__ import annotations

from liaison import memory

memory.limit_arenas()   # before any library starts a thread

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import structlog

from bot import help as help_commands
from bot import consent_commands, doc_commands, mss_commands, pathways, team, trace_command
from bot.documents import DocumentIndexer
from bot.newcomers import Newcomers
from bot.bridge_setup import prepare_bridge
from bot.app import Bot, BotSettings
from bot.archive import Archiver
from liaison.consents import ConsentStore
from liaison.contacts import Contacts
from bot.commands import Registry
from liaison.pathway_store import PathwayStore
from liaison.roster import Roster
from bot.services import PathwaySettings, Services
from bot.store import BotStore
from bot.watch import MembershipWatch
from liaison.config import ConfigError, load_config, policy_text
from liaison.matrix.crypto_store import prepare_stores
from liaison.db import DatabaseTooNew, open_database
from liaison.doc_check import Antivirus
from liaison.document_store import DocumentStore
from liaison.logs import setup_logging
from liaison.matrix import Matrix
from liaison.private import bot_owned, restrict_umask, tighten_at_start
from liaison.trace import Trace
from liaison.trace_anchor import AnchorFile, Anchorer
from liaison.mail_store import MailStore
from liaison.trusted import TrustedListError, load_trusted_domains
from policies.pathway import PATHWAY_TYPES
from policies.knobs import KnobError, load_knobs

log = structlog.get_logger("bot")


def build_registry() -> Registry:
    return Registry.of([*help_commands.ALL, *team.ALL, *pathways.ALL, *trace_command.ALL,
                        *consent_commands.ALL, *mss_commands.ALL, *doc_commands.ALL])


async def _announce_ready(bot: Bot, ready_file: str) -> None:
    await bot.ready.wait()
    Path(ready_file).write_text(str(os.getpid()))


async def _resume_documents(bot: Bot, indexer: DocumentIndexer) -> None:
    await bot.ready.wait()
    await indexer.resume()


async def _prepare_bridge(bot: Bot, services: Services) -> None:
    await bot.ready.wait()
    await prepare_bridge(services)


async def serve(config_path: str, ready_file: str | None = None) -> int:
    cfg = load_config(config_path)
    knobs = load_knobs(policy_text(cfg.policy_file))   # a bad policy file stops the start-up, naming its line
    setup_logging(cfg.logging.format, cfg.logging.level, cfg.logging.file)
    tighten_at_start(bot_owned(cfg))
    await prepare_stores([cfg.bot.store_dir], cfg.bot.store_pickle_key, "bot.store_pickle_key")
    engine = await open_database(cfg.database.url)
    matrix = Matrix(cfg.homeserver.url, cfg.bot.user_id, cfg.bot.store_dir, cfg.bot.device_name,
                    pickle_key=cfg.bot.store_pickle_key)
    roster = Roster(engine)
    await roster.load(cfg.roster)
    services = Services(matrix, roster, PathwayStore(engine), PathwaySettings(
        server_name=cfg.homeserver.server_name, bot_user_id=cfg.bot.user_id, naming=knobs.room_naming,
        ins_test_mode=cfg.pathways.ins_test_mode, retention_days=knobs.retention_days_after_closure,
        types=tuple((t.key, t.label) for t in cfg.pathways.types) or PATHWAY_TYPES,
        bridge_user_id=cfg.bridge.user_id if cfg.bridge else None),
        Trace(engine), ConsentStore(engine), knobs,
        mail=MailStore(engine) if cfg.bridge else None,
        trusted=load_trusted_domains(cfg.bridge.trusted_domains_file) if cfg.bridge else None,
        documents=DocumentStore(engine),
        antivirus=Antivirus(cfg.documents.clamd_socket, cfg.documents.clamd_timeout_seconds),
        contacts=Contacts(engine))
    indexer = DocumentIndexer(services)
    newcomers = Newcomers(services)
    bot = Bot(matrix, BotStore(engine), build_registry(),
              BotSettings(password=cfg.bot.password, staff=frozenset(cfg.bot.staff)),
              services, MembershipWatch(services).handle, indexer.handle, newcomers.handle)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(bot.run())
    archiving = asyncio.create_task(Archiver(services).loop(cfg.pathways.archive_interval_seconds))
    anchorer = Anchorer(services.trace, AnchorFile(cfg.trace.anchor_file, cfg.trace.anchor_key)) if cfg.trace else None
    anchoring = asyncio.create_task(anchorer.loop(cfg.trace.anchor_interval_seconds)) if anchorer else None
    announcer = asyncio.create_task(_announce_ready(bot, ready_file)) if ready_file else None
    bridging = asyncio.create_task(_prepare_bridge(bot, services)) if cfg.bridge else None
    resuming = asyncio.create_task(_resume_documents(bot, indexer))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if runner in done:
        code = 1
        log.error("bot.stopped_unexpectedly", error=repr(runner.exception()))
    else:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await bot.drain()
        await indexer.drain()
        await newcomers.drain()
    stopper.cancel()
    resuming.cancel()
    archiving.cancel()
    if anchoring:
        anchoring.cancel()
        await asyncio.gather(anchoring, return_exceptions=True)
        if code == 0:
            await anchorer.anchor_safely()   # the head at a clean stop
    if bridging:
        bridging.cancel()
    if announcer:
        announcer.cancel()
        Path(ready_file).unlink(missing_ok=True)
    await matrix.close()
    await engine.dispose()
    log.info("bot.stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Le bot Liaison.")
    parser.add_argument("-c", "--config", required=True, help="fichier de configuration YAML")
    parser.add_argument("--ready-file", help="fichier écrit quand le bot a fait sa première synchronisation")
    args = parser.parse_args(argv)
    restrict_umask()   # before any file is written: the database, the keys, the log are the owner's only
    try:
        return asyncio.run(serve(args.config, args.ready_file))
    except (ConfigError, DatabaseTooNew, KnobError, TrustedListError) as err:
        print(f"liaison: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
