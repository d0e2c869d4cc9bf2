"""Wiring of the MSSanté bridge: `python -m bridge -c liaison.yaml` (the bot's config file, `bridge:` section).

Runs until SIGINT/SIGTERM: the appservice's HTTP server, the bridge account's sync (room keys,
invitations), the IMAP relay in, the relay out and the outbox.
"""
from __future__ import annotations

from liaison import memory

memory.limit_arenas()
memory.map_big_blocks()   # a 20 MB mail's copies go back to the system as soon as they are freed

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from bridge import outbox, read_receipts
from bridge.appservice import Appservice
from bridge.deps import BridgeSettings, Deps
from bridge.homeserver import AppserviceApi, HomeserverError, Registration
from bridge.imap import ImapClient, ImapSettings
from bridge.catch_up import catch_up
from bridge.hand_routing import HandRouting
from bridge.inbound import Inbound
from bridge.metrics import Metrics
from bridge.outbound import Outbound
from bridge.puppets import Puppets
from bridge.smtp import SmtpClient, SmtpSettings
from bridge.store import BridgeStore
from liaison.trusted import TrustedListError, load_trusted_domains
from liaison.config import ConfigError, load_config, policy_text
from liaison.consents import ConsentStore
from liaison.matrix.crypto_store import prepare_stores
from liaison.contacts import Contacts
from liaison.db import DatabaseTooNew, open_database
from liaison.doc_check import Antivirus
from liaison.document_store import DocumentStore
from liaison.logs import setup_logging
from liaison.mail_store import QUARANTINE_ROOM, MailStore
from liaison.matrix import MEMBERSHIP_FILTER, Matrix, MatrixError, notice, txn_id
from liaison.pathway_store import PathwayStore, now_ms
from liaison.private import bridge_owned, restrict_umask, tighten_at_start
from liaison.roster import Roster
from liaison.trace import Trace
from liaison.puppet_names import PuppetNames
from policies.knobs import KnobError, load_knobs

log = structlog.get_logger("bridge")
RETENTION_EVERY_S = 3600   # how often quarantined mails past their keeping delay lose their raw text


async def sync_loop(d: Deps, store: BridgeStore, since: str | None, ready: asyncio.Event,
                    catching_up: Callable[[], Awaitable[int]]) -> None:
    """The bridge's own account: room keys arrive here, and invitations from the bot. At its first sync, and at
    the first one after the homeserver was away, the rooms' last messages are read back (bridge/catch_up.py)."""
    first, away, background = True, True, set()
    while True:
        try:   # the first sync returns at once: being ready must not wait for a long poll to run out
            batch = await d.matrix.sync(since, 0 if first else 30_000)
        except (MatrixError, OSError, asyncio.TimeoutError) as err:
            log.warning("bridge.sync_failed", error=str(err)[:200])
            away = True
            await asyncio.sleep(2)
            continue
        if away:   # in the background: the sync goes on (room keys for what it reads come by it)
            task = asyncio.create_task(catching_up())
            background.add(task)
            task.add_done_callback(background.discard)
            away = False
        for invite in batch.invites:
            member = await d.roster.get(invite.inviter) if invite.inviter else None
            try:
                if invite.inviter == d.settings.bot_user_id or (member and member.coordinator):
                    await d.matrix.join(invite.room_id)
                else:
                    await d.matrix.leave(invite.room_id)
            except MatrixError as err:
                log.warning("bridge.invite_failed", room_id=invite.room_id, error=str(err)[:200])
        if batch.receipts:
            try:
                await read_receipts.on_read(d, batch.receipts)
            except Exception:   # noqa: BLE001 — a receipt that cannot be handled never stops the sync
                log.exception("bridge.receipts_failed")
        await store.save_sync_token(d.matrix.user_id, batch.next_batch)
        since, first = batch.next_batch, False
        store.new_events.ring()   # a room key may have come for an event waiting to be read
        ready.set()


async def retention_loop(d: Deps, keep_days: int, every_s: float = RETENTION_EVERY_S) -> None:
    """Quarantined mails keep their raw text `keep_days` at most: then it is erased, their record and trace stay."""
    while True:
        try:
            numbers = await d.mail.purge_quarantine(now_ms() - keep_days * 86_400_000)
            if numbers:
                log.info("quarantine.purged", count=len(numbers), keep_days=keep_days)
                await tell_purged(d, numbers, keep_days)
        except Exception:   # noqa: BLE001 — retried at the next round; the other loops go on
            log.exception("quarantine.purge_failed")
        await asyncio.sleep(every_s)


async def tell_purged(d: Deps, numbers: list[int], keep_days: int) -> None:
    room = await d.mail.setting(QUARANTINE_ROOM)
    if not room:
        return
    listed = ", ".join(f"n° {n}" for n in numbers[:50])
    listed += f" et {len(numbers) - 50} autres" if len(numbers) > 50 else ""
    text = (f"Conservation : le texte des courriels en quarantaine depuis plus de {keep_days} jours est effacé "
            f"({listed}). Leur fiche (date, expéditeur, raison, décision) reste ; ceux qui attendaient une décision "
            "ne peuvent plus être déposés dans un parcours : demandez à l'expéditeur de les renvoyer si besoin.")
    try:
        await d.matrix.send(room, notice(text), txn_id("mss-purge", *map(str, numbers[:50])))
    except MatrixError as err:
        log.warning("quarantine.purge_notice_failed", error=str(err)[:200])


async def account(api: AppserviceApi, store: BridgeStore, matrix: Matrix, localpart: str) -> str | None:
    saved = await store.account(matrix.user_id)
    if saved is None:
        await api.register(localpart)
        session = await api.login(matrix.user_id, "Liaison MSSanté")
        await store.save_session(session)
        await matrix.login("", session)
        await matrix.set_display_name("Passerelle MSSanté")
        return None
    await matrix.login("", saved.session)
    return saved.sync_token


async def serve(config_path: str, ready_file: str | None) -> int:
    cfg = load_config(config_path)
    if cfg.bridge is None:
        raise ConfigError("bridge", "section absente : le pont n'est pas configuré")
    b, m = cfg.bridge, cfg.bridge.mailbox
    knobs = load_knobs(policy_text(cfg.policy_file))
    trusted = load_trusted_domains(b.trusted_domains_file)
    setup_logging(cfg.logging.format, cfg.logging.level, b.log_file)
    reg = Registration.load(b.registration)
    tighten_at_start(bridge_owned(cfg))
    store_dir = Path(b.store_dir)
    puppet_stores = sorted(p for p in (store_dir / "puppets").glob("*") if p.is_dir())
    await prepare_stores([store_dir / "bridge", *puppet_stores], b.store_pickle_key, "bridge.store_pickle_key")
    engine = await open_database(cfg.database.url)
    store, metrics = BridgeStore(engine), Metrics()
    api = AppserviceApi(cfg.homeserver.url, reg)
    matrix = Matrix(cfg.homeserver.url, b.user_id, store_dir / "bridge", "Liaison MSSanté",
                    sync_filter=MEMBERSHIP_FILTER, pickle_key=b.store_pickle_key)
    if b.user_id == f"@{reg.sender_localpart}:{cfg.homeserver.server_name}":
        raise ConfigError("bridge.user_id", "doit différer du sender_localpart de l'enregistrement : le serveur "
                                            "refuse la synchronisation à ce compte (prenez par ex. @mss_relais)")
    # Listen before anything we do makes the homeserver push or query (registering, logging in, joining):
    # a push refused now would put the appservice in Synapse's back-off, seconds of delay for the first events.
    # The bridge's account and its puppets: one naming object, for the appservice's filter and for the puppets.
    ours = PuppetNames(reg.sender_localpart.split("_")[0] + "_", cfg.homeserver.server_name, b.store_pickle_key)
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
                              source_oid=cfg.documents.source_oid, gateway_host=m.smtp.host)
    antivirus = Antivirus(cfg.documents.clamd_socket, float(cfg.documents.clamd_timeout_seconds))
    d = Deps(settings, store, MailStore(engine), PathwayStore(engine), Roster(engine), ConsentStore(engine), knobs,
             Trace(engine), trusted, matrix, puppets, smtp, metrics, DocumentStore(engine), antivirus,
             contacts=Contacts(engine))
    await api.ping()
    synced = asyncio.Event()
    inbound = Inbound(d, imap, m.address, b.poll_seconds)
    syncing = sync_loop(d, store, since, synced, lambda: catch_up(d, store, service.wanted))
    tasks = [asyncio.create_task(c) for c in (syncing, inbound.run(), Outbound(d).run(), HandRouting(d, inbound.parser).run(),
                                              outbox.run(d), retention_loop(d, b.quarantine_keep_days))]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.wait([asyncio.create_task(synced.wait()), asyncio.create_task(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    await api.ping()   # again: a push refused just before our first ping left the homeserver backing off
    if ready_file and not stop.is_set():
        Path(ready_file).write_text(str(os.getpid()))
    log.info("bridge.started", user_id=b.user_id, port=b.listen_port, trusted_domains=len(trusted.domains),
             antivirus=antivirus.configured)
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    code = 0 if stopper in done else 1
    for t in done:
        if t is not stopper and t.exception():
            log.error("bridge.task_died", error=repr(t.exception()))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await runner.cleanup()
    inbound.parser.close()
    for closing in (smtp.close(), imap.close(), puppets.close(), matrix.close(), api.close()):
        with contextlib.suppress(Exception):
            await closing
    await engine.dispose()
    if ready_file:
        Path(ready_file).unlink(missing_ok=True)
    log.info("bridge.stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge", description="Le pont MSSanté de Liaison.")
    parser.add_argument("-c", "--config", required=True, help="fichier de configuration YAML (section bridge)")
    parser.add_argument("--ready-file", help="fichier écrit quand le pont est prêt")
    args = parser.parse_args(argv)
    restrict_umask()   # before any file is written: the keys of the bridge and its puppets, the log
    try:
        return asyncio.run(serve(args.config, args.ready_file))
    except (ConfigError, DatabaseTooNew, KnobError, TrustedListError, HomeserverError) as err:
        print(f"liaison: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
