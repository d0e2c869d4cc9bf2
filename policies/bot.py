"""Rules about the bot itself."""
from __future__ import annotations

from collections.abc import Collection

from policies.decision import Allow, Decision, Deny


def bot_may_join(inviter: str | None, staff: Collection[str]) -> Decision:
    """The bot enters a room only when a member of the structure's staff invites it."""
    if inviter is None:
        return Deny("bot.invite.malformed", "Invitation illisible : l'auteur de l'invitation est inconnu.")
    if inviter in staff:
        return Allow("bot.invite.staff", "Invitation d'un membre de l'équipe.")
    return Deny("bot.invite.not_staff",
                "Seuls les membres de l'équipe déclarés dans la configuration peuvent inviter Liaison.")
