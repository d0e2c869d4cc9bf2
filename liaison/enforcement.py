"""The one way a path that moves patient information decides: at that moment, for its declared action
(policies/paths.py), with the facts of now, and traced. Shared by the bot and the bridge."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from liaison.stores.pathways import Pathway
from liaison.sharing_facts import Question, SharingStores, decide_for, facts_for_many
from policies.decision import Decision
from policies.paths import PATHS
from policies.sharing import decide


@dataclass(frozen=True)
class Decided:
    decision: Decision
    trace: int | None      # the trace entry's number

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    def sentence(self) -> str:
        """« <reason> (règle <rule>, <basis> ; trace <n>) », for the room."""
        return decision_sentence(self.decision, self.trace)


def decision_sentence(d: Decision, trace: int | None = None) -> str:
    """The one French sentence for a decision: « <reason> (règle <rule>, <basis>[ ; trace <n>]) »."""
    return f"{d.reason} (règle {d.rule}, {d.basis}" + (f" ; trace {trace})" if trace is not None else ")")


async def decide_at(stores: SharingStores, path: str, *, pathway: Pathway | None, recipient: str, actor: str,
                    categories: list[str] | None = None, **facts) -> Decided:
    """Decide the movement `path` of `pathway`'s information to `recipient` now, and trace it. `pathway` None: what
    moves concerns no one pathway (the quarantine's list): no patient's consents, objections nor team apply.

    `categories`: for the circle room, allowed when the policy allows one of the role's categories (the first
    that is allowed is traced, else the last refusal)."""
    declared = PATHS[path]
    category = facts.pop("data_category", "soins")
    for category in categories or [category]:
        decision = await decide_for(stores, pathway=pathway, user_id=recipient, actor=actor,
                                    action=declared.action, data_category=category, **facts)
        if decision.allowed:
            break
    ref = await stores.trace.append(actor=actor, action=declared.label, subject=recipient, decision=decision,
                                    patient_id=pathway.patient_id if pathway else None,
                                    pathway_id=pathway.id if pathway else None,
                                    data_category=category)
    return Decided(decision, ref)


async def decide_many(stores: SharingStores, path: str, questions: Sequence[Question], *,
                      actor: str) -> list[Decided]:
    """`decide_at` for several questions of one `actor` at once (each pathway of a list shown to its reader, each
    reminder of a pass): the facts read together (`facts_for_many`), each question decided by the same policy, and
    every decision traced, one entry each, in one transaction. What a batch refuses, the same questions asked one
    by one refuse."""
    if not questions:
        return []
    declared = PATHS[path]
    decisions = [decide(f) for f in await facts_for_many(stores, questions, actor=actor, action=declared.action)]
    refs = await stores.trace.append_many([
        {"actor": actor, "action": declared.label, "subject": q.user_id, "decision": d,
         "patient_id": q.pathway.patient_id if q.pathway else None, "pathway_id": q.pathway.id if q.pathway else None,
         "data_category": q.data_category} for q, d in zip(questions, decisions, strict=True)])
    return [Decided(d, ref) for d, ref in zip(decisions, refs, strict=True)]


async def team_rule(stores: SharingStores, *, pathway: Pathway, user_id: str, actor: str) -> Decision | None:
    """The team-of-care decision that already covers `user_id` (a consent would change nothing), or None.
    A question asked before recording a consent: nothing moves, nothing is traced."""
    decision = await decide_for(stores, pathway=pathway, user_id=user_id, actor=actor, action=PATHS["room.invite"].action)
    return decision if decision.allowed and decision.rule.startswith("team.") else None
