"""A property of the outbox (#13): over any sequence of consents, objections, withdrawals and liftings, a mail
leaves only if the decision at the moment it leaves allows it; otherwise it is cancelled and told, never sent.

The outbox's own code (`bridge.outbox.send_one`) and the real policy core run; the stores, SMTP and Matrix
are fakes (the edges under test elsewhere, on real servers)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from bridge import outbox
from bridge.deps import BridgeSettings
from bridge.store import Outgoing
from liaison.stores.pathways import Pathway
from liaison.stores.consents import Will
from policies.sharing import Consent, Knobs, Objection

CARDIO = "c.lefebvre@chu-demo.mssante.test"
PATHWAY = Pathway("pw", "P-AAAAA", "patient", "diabete", "open", "!room:hs", None, "@coord:hs", 0, None, None, None,
                  None)


@dataclass
class World:
    consents: list = field(default_factory=list)
    objections: list = field(default_factory=list)
    sent: list = field(default_factory=list)
    cancelled: list = field(default_factory=list)
    told: list = field(default_factory=list)
    traced: list = field(default_factory=list)
    clock: datetime = datetime(2026, 12, 1, tzinfo=timezone.utc)


class _Smtp:
    def __init__(self, w: World) -> None:
        self.w = w

    async def send(self, raw: bytes, **_kw) -> None:
        self.w.sent.append(raw)


class _Matrix:
    user_id = "@mss_relais:hs"

    def __init__(self, w: World) -> None:
        self.w = w

    async def send(self, _room: str, content: dict, _txn: str) -> str:
        self.w.told.append(content["body"])
        return "$notice"

    async def react(self, *_args) -> str:
        return "$reaction"


class _Stores:
    """What the outbox and the decision point read and write, in memory (one object plays every store)."""

    def __init__(self, w: World, knobs: Knobs) -> None:
        self.w, self.knobs = w, knobs
        self.settings = BridgeSettings(address="liaison@msp-demo.mssante.test", display_name="MSP", server_name="hs",
                                       bot_user_id="@bot:hs")
        self.roster = self.consents = self.pathways = self.trace = self.store = self.mail = self.trusted = self
        self.smtp, self.matrix, self.contacts, self.directory = _Smtp(w), _Matrix(w), None, None
        self.sharing = self   # the decision's port (liaison.sharing_facts.SharingStores), played by the same object
        self.clock = self     # the clock port: the world's time, which the test moves

    def now(self) -> datetime:
        return self.w.clock

    def now_ms(self) -> int:
        return int(self.w.clock.timestamp() * 1000)

    async def get(self, _who):
        return None

    async def checked(self, _who):   # the roster's and the contacts' readings, vouched for by the trace
        return ({}, []) if isinstance(_who, set) else (None, [])

    async def facts(self, _patient):
        return tuple(self.w.consents), tuple(self.w.objections)

    async def will(self, _patient):
        return Will(tuple(self.w.consents), tuple(self.w.objections))

    async def usual_team(self, _patient):
        return []

    async def checked_usual_team(self, _patient):
        return [], []

    async def members(self, _pathway):
        return []

    async def pathway(self, _id):
        return PATHWAY

    async def append(self, **kw) -> int:
        self.w.traced.append(kw["decision"].rule)
        return len(self.w.traced)

    async def is_correspondent(self, _pathway, _address):
        return True

    async def checked_correspondent(self, _pathway, _address):
        return True, []

    def trusts(self, _address):
        return True

    async def mark_sent(self, out_id):
        pass

    async def mark_failed(self, out_id, error, state="failed"):
        self.w.cancelled.append((out_id, state))


OPS = st.lists(st.sampled_from(["object", "lift", "consent", "withdraw", "send"]), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, correspondents_in_team=st.booleans())
def test_a_queued_mail_leaves_only_when_allowed_at_that_moment(ops, correspondents_in_team):
    w = World()
    d = _Stores(w, Knobs(mail_correspondents_in_team=correspondents_in_team))

    async def run() -> None:
        for n, op in enumerate(ops):
            w.clock += timedelta(minutes=1)
            now = w.clock
            if op == "object":
                w.objections.append(Objection("person", CARDIO, now))
            elif op == "lift":
                w.objections = [Objection(o.scope_kind, o.scope, o.recorded_at, now) if o.lifted_at is None else o
                                for o in w.objections]
            elif op == "consent":
                w.consents.append(Consent("person", CARDIO, "écrit", "@coord:hs", now - timedelta(days=1)))
            elif op == "withdraw":
                w.consents = [Consent(c.scope_kind, c.scope, c.means, c.recorded_by, c.recorded_at, c.expires_at,
                                      now) if c.withdrawn_at is None else c for c in w.consents]
            else:
                objected = any(o.lifted_at is None for o in w.objections)
                consented = any(c.withdrawn_at is None for c in w.consents)
                expected = not objected and (correspondents_in_team or consented)
                before = len(w.sent)
                out = Outgoing(f"out{n}", f"$reply{n}", PATHWAY.id, PATHWAY.room_id, f"m{n}@msp", CARDIO,
                               b"raw mail", "queued", 0, 2 ** 62, None)
                await outbox.send_one(d, out)
                assert (len(w.sent) > before) == expected, (op, w.objections, w.consents)
                if not expected:
                    assert (out.id, "cancelled") in w.cancelled, "cancelled, never left queued"
                    assert w.traced[-1] in ("objection.person", "outside.no_consent"), "traced with its rule"
                    assert "annulé avant son envoi" in w.told[-1], "the room is told"
    asyncio.run(run())
