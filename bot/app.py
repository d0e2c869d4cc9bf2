"""The bot's loop: sync, accept or decline invites, store each command, then answer it.

Order matters for crash safety: a command is written to the database before the sync
position moves past it, and marked answered only after the homeserver took the reply
(sent with a transaction id derived from the command, so a resend never posts twice).
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from bot.ports import MatrixPort
from bot.parsing import Invocation, Problem, Registry
from bot.registry import Context, Reply
from bot.preconditions import where
from bot.reactions import as_commands
from bot.rooms import show_in
from bot.services import Services
from bot.store import BotStore
from liaison import memory
from liaison.logs import new_ref
from liaison.matrix import Invite, MatrixError, TextMessage, reply_content, reply_txn_id
from policies.bot import bot_may_join

log = structlog.get_logger(__name__)

SYNC_TIMEOUT_MS = 30_000
ANSWERED_CACHE = 10_000
ANSWER_HEAD_START = 0.5   # seconds
WELCOME = Reply(
    "Bonjour, je suis Liaison, l'assistant de coordination de l'équipe. Tapez !aide pour voir ce que je sais faire.",
    "<p>Bonjour, je suis <b>Liaison</b>, l'assistant de coordination de l'équipe. "
    "Tapez <code>!aide</code> pour voir ce que je sais faire.</p>",
)


@dataclass
class BotSettings:
    password: str
    staff: frozenset[str]


class Bot:
    def __init__(self, matrix: MatrixPort, store: BotStore, registry: Registry, settings: BotSettings,
                 services: Services, on_memberships=None, on_files=None, on_devices=None) -> None:
        self.matrix = matrix
        self.store = store
        self.registry = registry
        self.settings = settings
        self.services = services
        self.on_memberships = on_memberships   # async callable(list[Membership])
        self.on_files = on_files               # async callable(list[FileMessage]): stores them, checks later
        self.on_devices = on_devices           # async callable(joins, users whose devices changed)
        self._in_flight: dict[str, asyncio.Task] = {}
        self._background: set[asyncio.Task] = set()
        self._answered: OrderedDict[str, None] = OrderedDict()   # in front of the database's UNIQUE
        self._joining = asyncio.Semaphore(8)   # a burst of invites must not starve the commands
        self._memberships = asyncio.Lock()
        self._kept: set[str] | None = None   # the undecrypted events last written to the database
        self.ready = asyncio.Event()

    async def run(self) -> None:
        saved = await self.store.account(self.matrix.user_id)
        session = await self.matrix.login(self.settings.password, saved.session if saved else None)
        if saved is None or saved.session != session:
            await self.store.save_session(session)
        since = saved.sync_token if saved else None
        log.info("bot.started", user_id=session.user_id, device_id=session.device_id, resumed=bool(since))
        for msg in await self.store.unanswered():
            self._answer_soon(msg)
        self.matrix.restore_pending(await self.store.undecrypted())   # their keys may come after the restart
        fresh = since is None      # a new account's first sync is history: none of it is for us
        replaying = not fresh      # the first sync after a restart may repeat what was answered
        was_idle, failures = False, 0
        while True:
            try:
                # The first sync returns at once (a restart is ready without waiting out a long poll).
                batch = await self.matrix.sync(since, SYNC_TIMEOUT_MS if self.ready.is_set() else 0)
            except (MatrixError, OSError, asyncio.TimeoutError) as err:
                log.warning("bot.sync_failed", error=str(err))
                await asyncio.sleep(2)
                continue
            try:
                await self._take(batch, session.user_id, fresh, replaying)
            except (SQLAlchemyError, OSError, asyncio.TimeoutError) as err:
                # The database went away: the sync position is not moved past what was not recorded, so the
                # same events come again with the next sync (commands are answered once: derived transaction ids).
                failures += 1
                delay = min(30, 2 ** failures)
                log.warning("bot.store_failed", error=type(err).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                continue
            since, fresh, replaying, failures = batch.next_batch, False, False, 0
            if batch.undecryptable:
                log.info("bot.undecryptable", count=batch.undecryptable)
            if not self.ready.is_set() or (batch.idle and not was_idle):
                memory.trim()   # after start-up, and once each time activity stops
            was_idle = batch.idle
            self.ready.set()
            await self._let_answers_go()

    async def _take(self, batch, user_id: str, fresh: bool, replaying: bool) -> None:
        """Everything a sync brought, recorded before its position is saved."""
        for invite in batch.invites:
            self._spawn(self._on_invite(invite))
        if batch.memberships and self.on_memberships and not fresh:
            self._spawn(self._in_order(self.on_memberships(batch.memberships)))
        joins = [m for m in batch.memberships if m.membership == "join"]
        if (joins or batch.device_changes) and self.on_devices and not fresh:
            self._spawn(self.on_devices(joins, batch.device_changes))
        messages = batch.messages
        if batch.reactions and not fresh:   # ✋ or ✅ on a task's notice: the command it stands for
            messages = [*messages, *await as_commands(self.services, batch.reactions)]
        parsed = {} if fresh else {m.event_id: self.registry.parse(m.body) for m in messages}
        commands = [m for m in messages if parsed.get(m.event_id) is not None]
        await self._dispatch(commands, replaying, parsed)
        if batch.files and self.on_files and not fresh:
            await self.on_files(batch.files)   # recorded before the sync position moves past them
        pending = self.matrix.pending()
        if set(pending) != self._kept:   # only when the set of events waiting for a key changed
            await self.store.keep_undecrypted(pending)
            self._kept = set(pending)
        await self.store.save_sync_token(user_id, batch.next_batch)

    async def _in_order(self, work) -> None:
        """Membership changes are applied one batch after the other, in the order they came (the lock is fair)."""
        async with self._memberships:
            await work

    async def _let_answers_go(self) -> None:
        """Give the answers just started a head start before the next long poll.

        Synapse serves one request at a time: a new /sync arriving while our reply is being
        persisted delays that reply. A slow command never holds the sync loop for long.
        """
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=ANSWER_HEAD_START)

    async def _dispatch(self, commands: list[TextMessage], replaying: bool,
                        parsed: dict[str, Invocation | Problem | None]) -> None:
        """Store every command before the sync position moves past it.

        In steady state a command just synced cannot have been answered yet, so its answer
        starts while it is being stored: if we crash before the store, the sync position has
        not moved either, and the replayed answer reuses its transaction id.
        """
        if replaying:
            for msg in await self.store.record_commands(commands):
                self._answer_soon(msg, parsed=parsed.get(msg.event_id))
            return
        stored = asyncio.ensure_future(self.store.record_commands(commands))
        for msg in commands:
            self._answer_soon(msg, stored, parsed[msg.event_id])
        await stored

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _on_invite(self, invite: Invite) -> None:
        staff = set(self.settings.staff) | {m.user_id for m in await self.services.roster.members()}
        decision = bot_may_join(invite.inviter, staff)
        async with self._joining:
            await self._act_on_invite(invite, decision)

    async def _act_on_invite(self, invite: Invite, decision) -> None:
        try:
            if decision.allowed:
                await self.matrix.join(invite.room_id)
                await self.matrix.send(invite.room_id, {"msgtype": "m.notice", "body": WELCOME.text,
                                                        "format": "org.matrix.custom.html",
                                                        "formatted_body": WELCOME.html},
                                       txn_id=reply_txn_id("welcome" + invite.room_id))
            else:
                await self.matrix.leave(invite.room_id)
            log.info("bot.invite", room_id=invite.room_id, inviter=invite.inviter, rule=decision.rule)
        except MatrixError as err:
            log.warning("bot.invite_failed", room_id=invite.room_id, rule=decision.rule, error=str(err))

    def _answer_soon(self, msg: TextMessage, stored: asyncio.Future | None = None,
                     parsed: Invocation | Problem | None = None) -> None:
        """`parsed`: the message as the registry read it when it was synced (read now when it comes from the
        database, after a restart)."""
        if msg.event_id in self._in_flight or msg.event_id in self._answered:
            return
        task = asyncio.create_task(self._answer(msg, stored, parsed or self.registry.parse(msg.body)))
        self._in_flight[msg.event_id] = task
        task.add_done_callback(lambda _t: self._in_flight.pop(msg.event_id, None))

    async def _answer(self, msg: TextMessage, stored: asyncio.Future | None,
                      parsed: Invocation | Problem | None) -> None:
        reply = await self._reply_for(msg, parsed)
        content = reply_content(msg, reply.text, reply.html or reply.text)
        for attempt in range(5):
            try:
                reply_id = await self.matrix.send(msg.room_id, content, reply_txn_id(msg.event_id))
                break
            except (MatrixError, OSError, asyncio.TimeoutError) as err:
                log.warning("bot.reply_failed", event_id=msg.event_id, attempt=attempt, error=str(err))
                await asyncio.sleep(0.5 * 2 ** attempt)
        else:
            return   # left unanswered in the database: retried at the next start
        if stored is not None:
            await stored
        if reply.sent is not None:
            try:
                await reply.sent(reply_id)
            except (SQLAlchemyError, OSError) as err:   # the answer went: its follow-up is not worth a second one
                log.warning("bot.after_reply_failed", event_id=msg.event_id, error=type(err).__name__)
        await self.store.mark_answered(msg.event_id, reply_id)
        self._answered[msg.event_id] = None
        while len(self._answered) > ANSWERED_CACHE:
            self._answered.popitem(last=False)
        log.info("bot.answered", event_id=msg.event_id, reply_id=reply_id)

    async def _reply_for(self, msg: TextMessage, parsed: Invocation | Problem | None) -> Reply:
        if parsed is None:
            return Reply.plain("Message ignoré.")
        if isinstance(parsed, Problem):
            return parsed.reply
        return await self._run(parsed, msg)

    async def _run(self, inv: Invocation, msg: TextMessage) -> Reply:
        member = await self.services.roster.get(msg.sender)
        is_staff = msg.sender in self.settings.staff or member is not None
        is_coordinator = bool(member and member.coordinator)
        if not inv.command.who.admits(is_staff, is_coordinator) or not inv.who.admits(is_staff, is_coordinator):
            who = inv.who if inv.command.who.admits(is_staff, is_coordinator) else inv.command.who
            return Reply.plain(f"!{inv.name} est réservée à {who.value}.")
        if inv.command.patient_data and not msg.encrypted:
            return Reply.plain(f"!{inv.command.name} n'est pas disponible dans ce salon : il n'est pas chiffré de bout "
                               "en bout, et cette commande montre ou porte des données d'un patient. Tapez-la dans le "
                               "salon (chiffré) du parcours.")
        unavailable = inv.command.requires(self.services) if inv.command.requires else None
        if unavailable:   # before the arguments: what is wrong with them does not matter then
            return Reply.plain(unavailable)
        here = await where(self.services, msg.room_id, inv.room, inv.open, inv.command.patient_data)
        if here.refusal:
            return Reply.plain(here.refusal)
        if inv.problem is not None:
            return inv.problem
        if inv.command.patient_data and inv.shows == "room":   # decided for the room its answer is read in
            shown = await show_in(self.services, here.kind, here.pathway, msg.sender)
            if not shown.allowed:
                return Reply.plain(f"!{inv.name} ne répond pas dans ce salon : {shown.sentence()}.")
        ctx = Context(msg.sender, msg.room_id, msg.event_id, inv.args, self.registry, is_staff, self.services,
                      is_coordinator, inv.words, inv.usage(), here.pathway, here.kind)
        try:
            return await inv.handler(ctx)
        except MatrixError as err:
            ref = new_ref()
            log.warning("bot.command_matrix_failed", command=inv.name, ref=ref, errcode=err.errcode)
            return Reply.plain(f"Le serveur Matrix n'a pas répondu comme prévu (réf. {ref}). Rien n'est perdu : "
                               "relancez la même commande, elle reprendra là où elle s'est arrêtée.")
        except Exception:
            ref = new_ref()
            log.exception("bot.command_crashed", command=inv.name, ref=ref, event_id=msg.event_id)
            return Reply.plain(f"Erreur interne en traitant !{inv.name} (réf. {ref}). "
                               "Réessayez ; si cela persiste, transmettez cette référence à l'administrateur.")

    async def drain(self, timeout: float = 10.0) -> None:
        """Let the replies being sent finish (they are in the database either way)."""
        tasks = [*self._in_flight.values(), *self._background]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
