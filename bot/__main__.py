"""Wiring: read the config, build the adapters, hand them to the bot, run until SIGINT/SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from bot import help as help_commands
from bot.app import Bot, BotSettings
from bot.commands import Registry
from bot.store import BotStore
from liaison.config import ConfigError, load_config
from liaison.db import DatabaseTooNew, open_database
from liaison.logs import setup_logging
from liaison.matrix import Matrix

log = structlog.get_logger("bot")


def build_registry() -> Registry:
    return Registry.of([*help_commands.ALL])


async def serve(config_path: str) -> int:
    cfg = load_config(config_path)
    setup_logging(cfg.logging.format, cfg.logging.level, cfg.logging.file)
    engine = await open_database(cfg.database.url)
    matrix = Matrix(cfg.homeserver.url, cfg.bot.user_id, cfg.bot.store_dir, cfg.bot.device_name)
    bot = Bot(matrix, BotStore(engine), build_registry(),
              BotSettings(password=cfg.bot.password, staff=frozenset(cfg.bot.staff)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(bot.run())
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
    stopper.cancel()
    await matrix.close()
    await engine.dispose()
    log.info("bot.stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Le bot Liaison.")
    parser.add_argument("-c", "--config", required=True, help="fichier de configuration YAML")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(serve(args.config))
    except (ConfigError, DatabaseTooNew) as err:
        print(f"liaison: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
