"""The MSSanté mail bridge (appservice). The homeserver side of its registration is made by the local stack."""
