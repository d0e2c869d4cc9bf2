"""The appservice's HTTP side, over a real BridgeStore on SQLite: stored before the 200, deduped on event id."""
from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import text

from bridge.appservice import MAX_JSON_DEPTH, Appservice
from bridge.homeserver import HomeserverError, Registration
from bridge.metrics import Metrics
from bridge.store import BridgeStore, Puppet
from liaison.db import open_database
from liaison.matrix import Session
from liaison.clock import system_now_ms as now_ms

TOKEN = "hs-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUPPET = "@mss_dr_martin:hs"


@pytest.fixture
async def store(tmp_path):
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
    yield BridgeStore(engine)
    await engine.dispose()


@pytest.fixture
def woken(store):
    """The relay's doorbell: the store rings it once new events are committed."""
    return store.new_events


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def client(aiohttp_client, store, woken, metrics):
    appservice = Appservice(store, TOKEN, metrics, lambda user: user == PUPPET)
    return await aiohttp_client(appservice.app())


def _event(event_id: str) -> dict:
    return {"event_id": event_id, "room_id": "!r:hs", "sender": "@n:hs", "type": "m.room.encrypted",
            "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA…"}}


async def _count(store: BridgeStore, table: str) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar()


TXN = "/_matrix/app/v1/transactions/{}"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}],
                         ids=["missing", "wrong", "no-scheme", "basic", "longer"])
async def test_a_bad_token_is_refused_and_nothing_is_stored(client, store, woken, headers):
    resp = await client.put(TXN.format("t1"), json={"events": [_event("$a")]}, headers=headers)
    assert resp.status == 403
    assert (await resp.json())["errcode"] == "M_FORBIDDEN"
    assert await _count(store, "as_transaction") == 0 and await _count(store, "as_event") == 0
    assert woken.rings == 0


async def test_the_token_may_come_as_a_query_parameter(client, store):
    resp = await client.put(TXN.format("t1") + f"?access_token={TOKEN}", json={"events": [_event("$a")]})
    assert resp.status == 200
    assert await _count(store, "as_event") == 1


async def test_bad_json_is_a_400_and_the_transaction_can_come_again(client, store, woken):
    resp = await client.put(TXN.format("t1"), data=b"{not json", headers=AUTH)
    assert resp.status == 400 and (await resp.json())["errcode"] == "M_NOT_JSON"
    for body in (b"[]", b'{"events": {}}', b'"events"'):
        resp = await client.put(TXN.format("t1"), data=body, headers=AUTH)
        assert resp.status == 400 and (await resp.json())["errcode"] == "M_BAD_JSON"
    assert await _count(store, "as_transaction") == 0 and woken.rings == 0
    resp = await client.put(TXN.format("t1"), json={"events": [_event("$a")]}, headers=AUTH)
    assert resp.status == 200
    assert [e["event_id"] for e in await store.pending_events()] == ["$a"]


async def test_a_transaction_is_stored_before_its_200(client, store, woken):
    events = [_event("$a"), _event("$b")]
    resp = await client.put(TXN.format("t1"), json={"events": events, "ephemeral": []}, headers=AUTH)
    assert resp.status == 200 and await resp.json() == {}
    assert {e["event_id"]: e for e in await store.pending_events()} == {"$a": events[0], "$b": events[1]}
    assert woken.rings == 1


async def test_a_resent_transaction_is_answered_200_and_stored_once(client, store, woken):
    body = {"events": [_event("$a"), _event("$b")]}
    for _ in range(3):
        resp = await client.put(TXN.format("t1"), json=body, headers=AUTH)
        assert resp.status == 200
    assert await _count(store, "as_transaction") == 1 and await _count(store, "as_event") == 2
    assert woken.rings == 1, "the relay is woken once"
    await client.put(TXN.format("t2"), json={"events": [_event("$b"), _event("$c")]}, headers=AUTH)
    assert await _count(store, "as_event") == 3 and woken.rings == 2


async def test_a_reused_transaction_id_with_new_events_is_processed(client, store, woken, metrics):
    """Synapse numbers its pushes from 1 again after a restart: a known id carrying new events is not dropped."""
    assert (await client.put(TXN.format("1"), json={"events": [_event("$a")]}, headers=AUTH)).status == 200
    await store.finish_event("$a", "done")
    resp = await client.put(TXN.format("1"), json={"events": [_event("$b")]}, headers=AUTH)
    assert resp.status == 200
    assert [e["event_id"] for e in await store.pending_events()] == ["$b"]
    assert woken.rings == 2, "the relay is woken for the new event"
    body = await (await client.get("/metrics")).text()
    assert "liaison_mss_transactions_reused_total 1.0" in body and "liaison_mss_events_received_total 2.0" in body


async def test_an_empty_transaction_is_recorded_without_waking_the_relay(client, store, woken):
    resp = await client.put(TXN.format("t1"), json={"events": []}, headers=AUTH)
    assert resp.status == 200
    assert await _count(store, "as_transaction") == 1 and woken.rings == 0


async def test_the_legacy_path_works_too(client, store):
    resp = await client.put("/transactions/t1", json={"events": [_event("$a")]}, headers=AUTH)
    assert resp.status == 200 and await _count(store, "as_event") == 1


async def test_an_overlong_transaction_id_is_refused(client, store):
    resp = await client.put(TXN.format("x" * 256), json={"events": [_event("$a")]}, headers=AUTH)
    assert resp.status == 400 and await _count(store, "as_transaction") == 0


async def test_metrics_expose_the_counters_and_the_outbox_depth(client, store, metrics):
    for n in (1, 2):
        await store.enqueue(source_event_id=f"$e{n}", pathway_id="pw", room_id="!r:hs", message_id=f"m{n}@l",
                            recipient="dr@ext.mssante.fr", raw=b"x", give_up_at=now_ms() + 60_000)
    metrics.relayed_in.inc()
    metrics.quarantined.labels("untrusted").inc()
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    body = await resp.text()
    for name in ("liaison_mss_relayed_in_total 1.0", "liaison_mss_relayed_out_total 0.0",
                 'liaison_mss_quarantined_total{reason="untrusted"} 1.0', "liaison_mss_duplicates_total",
                 "liaison_mss_retries_total", "liaison_mss_outbox_depth 2.0", "liaison_mss_inbound_seconds_bucket",
                 "liaison_mss_outbound_seconds_bucket"):
        assert name in body, name
    await store.mark_sent((await store.outgoing_by_event("$e1")).id)
    assert "liaison_mss_outbox_depth 1.0" in await (await client.get("/metrics")).text()


async def test_ping_answers_with_the_token_only(client):
    assert (await client.post("/_matrix/app/v1/ping", json={}, headers=AUTH)).status == 200
    assert (await client.post("/_matrix/app/v1/ping", json={})).status == 403


async def test_user_query_knows_only_the_puppets_the_bridge_registered(client, store):
    resp = await client.get("/_matrix/app/v1/users/@someone:hs", headers=AUTH)
    assert resp.status == 404 and (await resp.json())["errcode"] == "M_NOT_FOUND"
    resp = await client.get(f"/_matrix/app/v1/users/{PUPPET}", headers=AUTH)
    assert resp.status == 404, "in the namespace, but never registered: no such user"
    await store.add_puppet(Puppet("martin@chu.mssante.fr", PUPPET, "Dr Martin (MSSanté)"))
    assert (await client.get(f"/_matrix/app/v1/users/{PUPPET}", headers=AUTH)).status == 200
    assert (await client.get(f"/_matrix/app/v1/users/{PUPPET}")).status == 403


async def test_the_bridge_s_own_account_is_known_once_registered(aiohttp_client, store, metrics):
    own = "@mss_relais:hs"
    appservice = Appservice(store, TOKEN, metrics, lambda user: user.startswith("@mss_"))
    client = await aiohttp_client(appservice.app())
    assert (await client.get(f"/_matrix/app/v1/users/{own}", headers=AUTH)).status == 404
    await store.save_session(Session(own, "APPAREIL", "jeton"))
    assert (await client.get(f"/_matrix/app/v1/users/{own}", headers=AUTH)).status == 200


def _nested(depth: int) -> bytes:
    """A transaction body `depth` levels deep (the object and its events list count for two)."""
    inner = depth - 2
    return b'{"events": [' + b"[" * inner + b"]" * inner + b"]}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000], ids=["just-over", "deep", "very-deep"])
async def test_a_deeply_nested_transaction_is_refused_with_400_and_nothing_stored(client, store, depth):
    resp = await client.put(TXN.format("profond"), data=_nested(depth), headers=AUTH)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["errcode"] in ("M_NOT_JSON", "M_BAD_JSON")
    assert await _count(store, "as_transaction") == 0 and await _count(store, "as_event") == 0
    assert (await client.post("/_matrix/app/v1/ping", json={}, headers=AUTH)).status == 200, "still answering"


async def test_a_transaction_within_the_depth_limit_is_stored(client, store):
    assert (await client.put(TXN.format("t-limite"), data=_nested(MAX_JSON_DEPTH), headers=AUTH)).status == 200
    event = {**_event("$profond"), "content": {"x": [[[[[[[[[[]]]]]]]]]]}}
    body = json.dumps({"events": [event]}).encode()
    assert (await client.put(TXN.format("t-ok"), data=body, headers=AUTH)).status == 200
    assert await _count(store, "as_event") == 1


async def test_an_empty_hs_token_authorises_nothing(aiohttp_client, store, metrics):
    client = await aiohttp_client(Appservice(store, "", metrics, lambda user: False).app())
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer"}):
        assert (await client.post("/_matrix/app/v1/ping", json={}, headers=headers)).status == 403
        assert (await client.put(TXN.format("t"), json={"events": []}, headers=headers)).status == 403


@pytest.mark.parametrize("registration, words", [
    ({"id": "mss", "as_token": "a" * 20, "hs_token": "", "sender_localpart": "mss_bridge"}, "hs_token vide"),
    ({"id": "mss", "as_token": "  ", "hs_token": "h" * 20, "sender_localpart": "mss_bridge"}, "as_token vide"),
    ({"id": "mss", "as_token": "a" * 20, "hs_token": None, "sender_localpart": "mss_bridge"}, "hs_token vide"),
    ({"id": "mss", "as_token": "a" * 20, "sender_localpart": "mss_bridge"}, "hs_token manquant"),
    (["pas", "une", "section"], "illisible"),
])
def test_a_registration_with_an_empty_or_missing_token_is_refused(tmp_path, registration, words):
    path = tmp_path / "appservice.yaml"
    path.write_text(yaml.safe_dump(registration))
    with pytest.raises(HomeserverError) as err:
        Registration.load(path)
    assert words in str(err.value)


async def test_room_alias_queries_find_nothing(client):
    assert (await client.get("/_matrix/app/v1/rooms/%23x:hs", headers=AUTH)).status == 404
