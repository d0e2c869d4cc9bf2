"""Stage 4: the sharing law, asked now, for this sender and this pathway (an objection keeps the mail out)."""
from __future__ import annotations

from bridge.deps import Deps
from bridge.routing import Quarantine, Route
from bridge.stages.judge import Judged
from bridge.stages.outcome import Outcome
from liaison.enforcement import decide_at


async def check(d: Deps, judged: Judged, where: Route) -> Outcome | None:
    """None when the mail may be posted; otherwise it goes to quarantine with the rule named (and traced)."""
    mail = judged.mail
    pathway = await d.pathways.pathway(where.pathway.id)
    decided = await decide_at(d.sharing, "mail.in.post", pathway=pathway, recipient=mail.from_address,
                              actor=mail.from_address, trusted_domain=judged.trusted)
    if decided.allowed:
        return None
    return Outcome.quarantined(Quarantine(decided.decision.rule, decided.sentence()), mail.from_address, judged.trusted)
