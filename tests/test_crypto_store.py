"""The end-to-end keys on disk: encrypted with the configured key, a store from before re-encrypted once, its
device's keys kept (real matrix-nio stores)."""
from __future__ import annotations

import pytest
import vodozemac
from nio import AsyncClient, AsyncClientConfig
from nio.crypto.sessions import OlmAccount, Session

from liaison.matrix.crypto_store import NIO_DEFAULT_KEY, StoreKeyError, repickle_stores

KEY = "0123456789abcdef" * 4
ROOM = "!salon:hs"


async def _client(folder, key: str) -> AsyncClient:
    client = AsyncClient("http://127.0.0.1:1", "@liaison:hs", store_path=str(folder),
                         config=AsyncClientConfig(encryption_enabled=True, pickle_key=key))
    client.restore_login("@liaison:hs", "APPAREIL", "jeton")   # opens the store, as Matrix.login does
    return client


async def _store_with_keys(folder, key: str) -> tuple[dict, set[str]]:
    """A device with its account, an Olm session and a room key, as nio saves them; (identity keys, session ids)."""
    client = await _client(folder, key)
    peer = OlmAccount()
    peer.generate_one_time_keys(1)
    one_time = next(iter(peer.one_time_keys["curve25519"].values()))
    session = Session(session=client.olm.account.create_outbound_session(peer.identity_keys["curve25519"], one_time))
    client.store.save_session(peer.identity_keys["curve25519"], session)
    client.olm.create_outbound_group_session(ROOM)
    ids = {s.id for s in client.store.load_inbound_group_sessions()} | {session.id}
    keys = dict(client.olm.account.identity_keys)
    await client.close()
    return keys, ids


async def _opened(folder, key: str) -> tuple[dict, set[str]]:
    client = await _client(folder, key)
    try:
        ids = {s.id for s in client.store.load_inbound_group_sessions()}
        ids |= {s.id for sessions in client.store.load_sessions().values() for s in sessions}
        return dict(client.olm.account.identity_keys), ids
    finally:
        await client.close()


async def test_a_store_under_nio_s_default_key_is_reencrypted_and_keeps_its_device_keys(tmp_path):
    keys, ids = await _store_with_keys(tmp_path, NIO_DEFAULT_KEY)
    assert repickle_stores([tmp_path], KEY) == (1, 3), "the account, the Olm session and the room key"
    assert await _opened(tmp_path, KEY) == (keys, ids), "the same device, its sessions and room keys"
    with pytest.raises(vodozemac.LibolmPickleException):   # what nio itself does with a wrong key
        await _opened(tmp_path, NIO_DEFAULT_KEY)
    assert repickle_stores([tmp_path], KEY) == (0, 0), "done once"


async def test_a_store_made_with_the_key_is_left_alone(tmp_path):
    keys, ids = await _store_with_keys(tmp_path, KEY)
    assert repickle_stores([tmp_path], KEY) == (0, 0)
    assert await _opened(tmp_path, KEY) == (keys, ids)


async def test_a_store_under_another_key_is_refused_and_left_intact(tmp_path):
    keys, ids = await _store_with_keys(tmp_path, "une-autre-cle-de-plus-de-32-caracteres")
    before = sorted(p.read_bytes() for p in tmp_path.glob("@*.db"))
    with pytest.raises(StoreKeyError):
        repickle_stores([tmp_path], KEY)
    assert sorted(p.read_bytes() for p in tmp_path.glob("@*.db")) == before, "nothing half rewritten"
    assert await _opened(tmp_path, "une-autre-cle-de-plus-de-32-caracteres") == (keys, ids)


def test_folders_without_a_store_are_fine(tmp_path):
    (tmp_path / "liaison.db").write_bytes(b"")
    assert repickle_stores([tmp_path, tmp_path / "absent"], KEY) == (0, 0)
