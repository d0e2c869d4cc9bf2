"""Wiring of the MSSanté bridge: `python -m bridge -c liaison.yaml` (the bot's config file, `bridge:` section).

Runs until SIGINT/SIGTERM, in one lifecycle (liaison/lifecycle.py): the appservice's HTTP server, the bridge
account's sync (room keys, invitations), the IMAP relay in, the relay out, hand routing, the outbox and the
quarantine's retention. A loop that crashes is logged and started again after a back-off.
"""
from __future__ import annotations

from liaison import memory

memory.limit_arenas()
memory.map_big_blocks()   # a 20 MB mail's copies go back to the system as soon as they are freed

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import structlog
from aiohttp import web

from bridge import outbox
from bridge.appservice import Appservice
from bridge.catch_up import catch_up
from bridge.deps import BridgeSettings, Deps
from bridge.hand_routing import HandRouting
from bridge.homeserver import AppserviceApi, HomeserverError, Registration
from bridge.imap import ImapClient, ImapSettings
from bridge.inbound import Inbound
from bridge.metrics import Metrics
from bridge.outbound import Outbound
from bridge.own_account import account, sync_loop
from bridge.ports import Poster
from bridge.puppets import Puppets
from bridge.quarantine_room import tell_purged
from bridge.smtp import SmtpClient, SmtpSettings
from bridge.store import BridgeStore
from liaison import lifecycle
from liaison.bootstrap import antivirus_of, shared_stores
from liaison.clock import Clock, SystemClock
from liaison.config import ConfigError, load_config, policy_text
from liaison.db import DatabaseTooNew
from liaison.lifecycle import Lifecycle, close_quietly, stop_on_signals
from liaison.logs import setup_logging
from liaison.matrix import MEMBERSHIP_FILTER, Matrix
from liaison.matrix.crypto_store import prepare_stores
from liaison.private import bridge_owned, tighten_at_start
from liaison.puppet_names import PuppetNames, puppet_id_key
from liaison.stores.mail import MailStore
from liaison.trusted import TrustedListError, load_trusted_domains
from policies.knobs import KnobError, load_knobs

log = structlog.get_logger("bridge")
RETENTION_EVERY_S = 3600   # how often quarantined mails past their keeping delay lose their raw text


class RetentionPorts(Protocol):
    """What the quarantine's retention uses: the quarantined mails, the clock, the quarantine room told."""

    @property
    def mail(self) -> MailStore: ...

    @property
    def matrix(self) -> Poster: ...

    @property
    def clock(self) -> Clock: ...


async def purge_quarantine(d: RetentionPorts, keep_days: int) -> None:
    """Quarantined mails keep their raw text `keep_days` at most: then it is erased, their record and trace stay."""
    numbers = await d.mail.purge_quarantine(d.clock.now_ms() - keep_days * 86_400_000)
    if numbers:
        log.info("quarantine.purged", count=len(numbers), keep_days=keep_days)
        await tell_purged(d.mail, d.matrix, numbers, keep_days)


async def serve(config_path: str, ready_file: str | None) -> int:
    cfg = load_config(config_path, for_services={"bridge"})   # its own secrets only, never the bot's
    if cfg.bridge is None:
        raise ConfigError("bridge", "section absente : le pont n'est pas configuré")
    b, m = cfg.bridge, cfg.bridge.mailbox
    load_knobs(policy_text(cfg.policy_file))   # refused before anything starts, naming its line
    load_trusted_domains(b.trusted_domains_file)
    setup_logging(cfg.logging.format, cfg.logging.level, b.log_file)
    reg = Registration.load(b.registration)
    tighten_at_start(bridge_owned(cfg))
    store_dir = Path(b.store_dir)
    puppet_stores = sorted(p for p in (store_dir / "puppets").glob("*") if p.is_dir())
    await prepare_stores([store_dir / "bridge", *puppet_stores], b.store_pickle_key, "bridge.store_pickle_key")
    clock = SystemClock()
    shared = await shared_stores(cfg, clock)
    store, metrics = BridgeStore(shared.engine, clock), Metrics()
    api = AppserviceApi(cfg.homeserver.url, reg)
    matrix = Matrix(cfg.homeserver.url, b.user_id, store_dir / "bridge", "Liaison MSSanté",
                    sync_filter=MEMBERSHIP_FILTER, pickle_key=b.store_pickle_key)
    if b.user_id == f"@{reg.sender_localpart}:{cfg.homeserver.server_name}":
        raise ConfigError("bridge.user_id", "doit différer du sender_localpart de l'enregistrement : le serveur "
                                            "refuse la synchronisation à ce compte (prenez par ex. @mss_relais)")
    # Listen before anything we do makes the homeserver push or query (registering, logging in, joining):
    # a push refused now would put the appservice in Synapse's back-off, seconds of delay for the first events.
    # The bridge's account and its puppets: one naming object, for the appservice's filter and for the puppets.
    ours = PuppetNames(reg.sender_localpart.split("_")[0] + "_", cfg.homeserver.server_name,
                       puppet_id_key(b.store_pickle_key))
    service = Appservice(store, reg.hs_token, metrics, ours.is_bridged)
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, b.listen_host, b.listen_port).start()
    since = await account(api, store, matrix, b.user_id[1:].split(":")[0])
    puppets = Puppets(api, store, homeserver=cfg.homeserver.url, server_name=cfg.homeserver.server_name,
                      store_dir=store_dir, bridge=matrix, names=ours, pickle_key=b.store_pickle_key,
                      bot_user_id=cfg.bot.user_id)
    smtp = SmtpClient(SmtpSettings(m.smtp.host, m.smtp.port, m.ca, m.cert, m.key))
    imap = ImapClient(ImapSettings(m.imap.host, m.imap.port, m.ca, m.cert, m.key, m.imap_user, m.imap_password,
                                   max_mail_bytes=b.max_mail_bytes))
    settings = BridgeSettings(address=m.address, display_name=m.display_name, server_name=cfg.homeserver.server_name,
                              bot_user_id=cfg.bot.user_id, structure=cfg.structure, max_mail_bytes=b.max_mail_bytes,
                              max_attachments=b.max_attachments, give_up_seconds=b.give_up_hours * 3600,
                              retry_first_seconds=b.retry_first_seconds, retry_max_seconds=b.retry_max_seconds,
                              source_oid=cfg.documents.source_oid, gateway_host=m.smtp.host,
                              ins_test_mode=cfg.pathways.ins_test_mode,
                              sender_authentication_required=m.require_authenticated_sender)
    antivirus = antivirus_of(cfg)
    d = Deps.of(shared, settings, store, matrix, puppets, smtp, metrics, antivirus)
    await api.ping()
    synced = asyncio.Event()
    inbound = Inbound(d, imap, m.address, b.poll_seconds)

    life = Lifecycle("bridge", clock)
    # The stop, in the reverse order of these lines: the appservice's HTTP server first, the database last.
    life.on_stop("database", shared.close)
    life.on_stop("clients", lambda: close_quietly(smtp.close(), imap.close(), puppets.close(), matrix.close(),
                                                  api.close()))
    life.on_stop("parsers", _closing(inbound.parser.close))
    life.on_stop("appservice", runner.cleanup)
    life.add("sync", lambda: sync_loop(d, store, since, synced, lambda: catch_up(d, store, service.wanted)))
    life.add("mail-in", inbound.run)
    life.add("mail-out", Outbound(d).run)
    life.add("hand-routing", HandRouting(d, inbound.parser).run)
    life.add("outbox", lambda: outbox.run(d))
    life.every("quarantine-retention", RETENTION_EVERY_S, lambda: purge_quarantine(d, b.quarantine_keep_days))
    life.add("ready", lambda: _ready(api, synced, ready_file, life))
    if ready_file:
        life.on_stop("ready-file", _closing(lambda: Path(ready_file).unlink(missing_ok=True)))
    log.info("bridge.starting", user_id=b.user_id, port=b.listen_port, trusted_domains=len(d.trusted.domains),
             antivirus=antivirus.configured)
    stop_on_signals(life)
    code = await life.run()
    log.info("bridge.stopped", code=code)
    return code


async def _ready(api: AppserviceApi, synced: asyncio.Event, ready_file: str | None, life: Lifecycle) -> None:
    """Once the bridge's account has synced: ping the homeserver again (a push refused just before our first ping
    left it backing off), then say so (the ready file), and stay until the stop."""
    await synced.wait()
    await api.ping()
    if ready_file:
        Path(ready_file).write_text(str(os.getpid()))
    log.info("bridge.started")
    await asyncio.Event().wait()


def _closing(close: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def step() -> None:
        close()
    return step


def main(argv: list[str] | None = None) -> int:
    return lifecycle.main("python -m bridge", "Le pont MSSanté de Liaison.",
                          "fichier de configuration YAML (section bridge)", serve,
                          (ConfigError, DatabaseTooNew, KnobError, TrustedListError, HomeserverError), argv)


if __name__ == "__main__":
    sys.exit(main())
