"""The appservice's HTTP side: the homeserver pushes transactions here; /metrics for Prometheus.

A transaction is stored (with its events) before the 200: the homeserver resends until it
gets one. Events are deduplicated by event id: a resent transaction is not stored twice, and a
transaction id seen before (Synapse numbers them from 1 again after a restart) with new events
is processed.
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Callable

import structlog
from aiohttp import web

from bridge.metrics import Metrics
from bridge.store import BridgeStore

log = structlog.get_logger(__name__)


MAX_JSON_DEPTH = 400   # a homeserver's event is a few levels deep; more would only cost recursion later


def _error(status: int, errcode: str, error: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": error}, status=status)


def _shallow(value, limit: int = MAX_JSON_DEPTH) -> bool:
    """No list or object nested deeper than `limit` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


class Appservice:
    def __init__(self, store: BridgeStore, hs_token: str, metrics: Metrics, is_puppet: Callable[[str], bool]) -> None:
        self.store = store   # rings the relay's doorbell when a transaction brings new events
        self.hs_token = hs_token
        self.metrics = metrics
        self.is_puppet = is_puppet

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_put("/_matrix/app/v1/transactions/{txn}", self.transaction)
        app.router.add_put("/transactions/{txn}", self.transaction)
        app.router.add_post("/_matrix/app/v1/ping", self.ping)
        app.router.add_get("/_matrix/app/v1/users/{user}", self.user)
        app.router.add_get("/_matrix/app/v1/rooms/{alias}", self.no_room)
        app.router.add_get("/metrics", self.render_metrics)
        return app

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else request.query.get("access_token", "")
        return bool(self.hs_token) and hmac.compare_digest(token.encode(), self.hs_token.encode())

    async def transaction(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(403, "M_FORBIDDEN", "bad hs_token")
        txn = request.match_info["txn"]
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):
            return _error(400, "M_NOT_JSON", "transaction body is not JSON, or nested too deep")
        if not _shallow(body):
            return _error(400, "M_BAD_JSON", f"transaction body nested deeper than {MAX_JSON_DEPTH} levels")
        events = body.get("events", []) if isinstance(body, dict) else None
        if not isinstance(events, list) or len(txn) > 255:
            return _error(400, "M_BAD_JSON", "events must be a list")
        wanted = [e for e in events if self.wanted(e)]
        new, known = await self.store.record_transaction(txn, wanted)
        if new:
            self.metrics.events_received.inc(new)
        if known and new:   # the homeserver restarted and numbers from 1 again: the events count, not the id
            self.metrics.txn_reused.inc()
            log.info("as.transaction_reused", txn=txn, new_events=new)
        log.debug("as.transaction", txn=txn, events=len(events), kept=len(wanted), new=new)
        return web.json_response({})

    def wanted(self, event) -> bool:
        """Only what may be relayed out: room messages from people (not our puppets' own posts), and deletions
        (a deleted message waiting in the outbox never leaves, bridge/corrections.py); edits are messages."""
        return (isinstance(event, dict) and event.get("type") in ("m.room.message", "m.room.encrypted",
                                                                  "m.room.redaction")
                and "state_key" not in event and not self.is_puppet(str(event.get("sender", ""))))

    async def ping(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(403, "M_FORBIDDEN", "bad hs_token")
        return web.json_response({})

    async def user(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(403, "M_FORBIDDEN", "bad hs_token")
        # Puppets are made by the bridge when a mail arrives, never on someone's query: only an account the
        # bridge registered exists (its own, or a puppet's).
        user = request.match_info["user"]
        if not self.is_puppet(user) or not await self.store.registered(user):
            return _error(404, "M_NOT_FOUND", "no such puppet")
        return web.json_response({})

    async def no_room(self, request: web.Request) -> web.Response:
        return _error(404, "M_NOT_FOUND", "the bridge has no room aliases")

    async def render_metrics(self, request: web.Request) -> web.Response:
        self.metrics.outbox_depth.set(await self.store.depth())
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")
