"""Whatever the sequence of consents, objections, withdrawals and invitations, the room obeys the law.

A pure model of what the bot does: every operation is followed by a re-evaluation of the
members through `decide`, refused members are removed, and every membership change is traced.
"""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.professions import Category
from policies.sharing import Action, Consent, Facts, Objection, Recipient, consent_in_force, decide

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
PEOPLE = {
    "@gp:hs": (Category.HEALTH, True, "medecin"),
    "@ide:hs": (Category.HEALTH, True, "infirmier"),
    "@ass:hs": (Category.SOCIAL, True, "assistant-service-social"),
    "@kine:ext": (None, False, None),
    "@pharma:ext": (None, False, None),
}
TEAM = frozenset({"@gp:hs", "@ide:hs"})

who = st.sampled_from(sorted(PEOPLE))
operation = st.one_of(
    st.tuples(st.just("consent"), who), st.tuples(st.just("withdraw"), who),
    st.tuples(st.just("object"), who), st.tuples(st.just("lift"), who), st.tuples(st.just("invite"), who),
    st.tuples(st.just("object_category"), st.just("non-sante")),
)


def facts(user: str, consents, objections) -> Facts:
    category, in_roster, profession = PEOPLE[user]
    return Facts(action=Action.JOIN, actor="@coord:hs", recipient=Recipient("member", user, category, in_roster),
                 team=TEAM, now=NOW, recipient_profession=profession, consents=tuple(consents),
                 objections=tuple(objections), data_category="social" if category is Category.SOCIAL else "soins")


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=25))
def test_room_never_holds_someone_the_law_excludes(ops):
    consents: list[Consent] = []
    objections: list[Objection] = []
    members: set[str] = set()
    trace: list[tuple[str, str]] = []
    for op, target in ops:
        if op == "consent":
            consents.append(Consent("person", target, "écrit", "@coord:hs", NOW))
        elif op == "withdraw":
            consents = [c if c.scope != target else Consent(c.scope_kind, c.scope, c.means, c.recorded_by,
                                                            c.recorded_at, withdrawn_at=NOW) for c in consents]
        elif op == "object":
            objections.append(Objection("person", target, NOW))
        elif op == "object_category":
            objections.append(Objection("category", target, NOW))
        elif op == "lift":
            objections = [o if o.scope != target else Objection(o.scope_kind, o.scope, o.recorded_at, lifted_at=NOW)
                          for o in objections]
        elif op == "invite" and target not in members and decide(facts(target, consents, objections)).allowed:
            members.add(target)
            trace.append(("invite", target))
        for member in sorted(members):   # what the bot does after every change
            if not decide(facts(member, consents, objections)).allowed:
                members.discard(member)
                trace.append(("remove", member))

        objected = {o.scope for o in objections if o.lifted_at is None and o.scope_kind == "person"}
        assert not members & objected, "no objected person remains a member"
        if any(o.lifted_at is None and o.scope_kind == "category" for o in objections):
            assert "@ass:hs" not in members
        consented = {c.scope for c in consents if consent_in_force(c, NOW)}
        for m in members - TEAM:
            assert m in consented, f"{m} is outside the team with no consent in force"
        changes = [t for t in trace]
        assert {m for kind, m in changes if kind == "invite"} >= members, "every membership has a trace entry"
