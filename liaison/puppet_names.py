"""The MSSanté bridge's accounts, as the bot and the bridge both recognise them: its own (`@mss_relais`) and one
puppet per external address, all under the appservice's prefix (`@mss_`), and the opaque id a new puppet gets."""
from __future__ import annotations

import hashlib
import hmac


def puppet_localpart(prefix: str, address: str, key: str) -> str:
    """`mss_3f9c…`: the address keyed-hashed with the bridge's secret, so a user id names no one.

    A user id lands where our encryption does not reach (Synapse's log, its database, every server the
    room federates with); a plain hash of a guessable address could be reversed by trying addresses,
    a keyed one cannot. The address → id map is the bridge's store: puppets made before keep their id.
    """
    mac = hmac.new(key.encode(), b"liaison-puppet:" + address.lower().encode(), hashlib.sha256)
    return prefix + mac.hexdigest()[:32]


def puppet_id_key(store_pickle_key: str) -> str:
    """The key of new puppets' ids, derived from the bridge's store key for this one use: the store key itself
    never keys anything else (a key, one purpose). Puppets made before keep the id the bridge's store holds."""
    return hmac.new(store_pickle_key.encode(), b"liaison: the key of puppet ids", hashlib.sha256).hexdigest()


class PuppetNames:
    def __init__(self, prefix: str, server_name: str = "", key: str = "") -> None:
        self.prefix, self.server_name, self._key = prefix, server_name, key

    @classmethod
    def of_bridge(cls, bridge_user_id: str, server_name: str = "", key: str = "") -> "PuppetNames":
        """The prefix is the bridge account's own (`@mss_relais` → `mss_`): the appservice's namespace; the server
        is the bridge account's too, unless given."""
        localpart, _, server = bridge_user_id[1:].partition(":")
        return cls(localpart.split("_")[0] + "_", server_name or server, key)

    def is_bridged(self, user_id: str) -> bool:
        """The bridge's account or one of its puppets: what they post, the bridge posted (and indexed) itself.
        Only on our own server: `@mss_x:other.server`, from a federated server, is nobody's puppet of ours."""
        localpart, _, server = user_id[1:].partition(":")
        return (bool(self.prefix) and user_id.startswith("@") and localpart.startswith(self.prefix)
                and bool(self.server_name) and server == self.server_name)

    def user_id_for(self, address: str) -> str:
        """The user id a new puppet of `address` gets (one already made keeps the one the bridge's store holds)."""
        return f"@{puppet_localpart(self.prefix, address, self._key)}:{self.server_name}"
