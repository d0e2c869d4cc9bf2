"""Which accounts are the bridge's: its own and its puppets, by prefix *and* server (issue 24, identity edges)."""
from __future__ import annotations

import pytest

from bot.services import PathwaySettings
from liaison.puppet_names import PuppetNames

OURS = PuppetNames.of_bridge("@mss_relais:hs.example", key="k" * 32)


@pytest.mark.parametrize("user_id, bridged", [
    ("@mss_relais:hs.example", True),
    ("@mss_0c6f2a9e:hs.example", True),
    ("@mss_0c6f2a9e:other.example", False),       # a federated server's look-alike: re-evaluated like anyone
    ("@mss_relais:hs.example.evil", False),
    ("@medecin:hs.example", False),
    ("@xmss_0c6f:hs.example", False),
    ("mss_0c6f:hs.example", False),
])
def test_a_puppet_is_ours_by_prefix_and_server(user_id, bridged):
    assert OURS.is_bridged(user_id) is bridged


def test_the_bot_and_the_bridge_agree_on_who_is_bridged():
    settings = PathwaySettings(server_name="hs.example", bot_user_id="@liaison:hs.example",
                               bridge_user_id="@mss_relais:hs.example")
    bridge_side = PuppetNames("mss_", "hs.example", "k" * 32)
    for user_id in ("@mss_relais:hs.example", "@mss_ab:hs.example", "@mss_ab:other.example", "@gp:hs.example"):
        assert settings.is_bridged(user_id) is bridge_side.is_bridged(user_id), user_id


def test_a_new_puppet_gets_an_id_on_our_server_that_we_recognise():
    made = OURS.user_id_for("dr.lefebvre@chu.mssante.fr")
    assert made.endswith(":hs.example") and OURS.is_bridged(made)
    assert "lefebvre" not in made, "no address in clear in a user id"


def test_new_puppets_ids_use_a_key_of_their_own_derived_from_the_store_key():
    from liaison.puppet_names import puppet_id_key, puppet_localpart

    store_key = "s" * 32
    derived = puppet_id_key(store_key)
    assert derived != store_key and derived == puppet_id_key(store_key) and len(derived) == 64
    address = "dr.lefebvre@chu.mssante.fr"
    assert puppet_localpart("mss_", address, derived) != puppet_localpart("mss_", address, store_key)
