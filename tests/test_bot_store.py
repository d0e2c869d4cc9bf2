"""The bot's store on SQLite and PostgreSQL: commands kept once, bodies dropped once answered."""
from __future__ import annotations

from bot.store import BotStore
from liaison.db import create_engine, migrate
from liaison.matrix import Session, TextMessage


async def test_commands_are_recorded_once_and_bodies_dropped_when_answered(db_url):
    engine = create_engine(db_url)
    await migrate(engine)
    store = BotStore(engine)
    a = TextMessage("!r:hs", "$a", "@u:hs", "!aide", True)
    b = TextMessage("!r:hs", "$b", "@u:hs", "!aide parcours", True, thread_root="$root")
    assert await store.record_commands([a, b]) == [a, b]
    assert await store.record_commands([a]) == [a], "unanswered: still to answer"
    await store.mark_answered("$a", "$reply")
    assert await store.record_commands([a, b]) == [b], "answered commands are never answered again"
    left = await store.unanswered()
    assert [m.event_id for m in left] == ["$b"] and left[0].thread_root == "$root"

    await store.save_session(Session("@bot:hs", "DEV", "tok"))
    await store.save_sync_token("@bot:hs", "s42")
    saved = await store.account("@bot:hs")
    assert saved.session == Session("@bot:hs", "DEV", "tok") and saved.sync_token == "s42"
    async with engine.connect() as conn:
        from sqlalchemy import text
        body = (await conn.execute(text("SELECT body FROM bot_command WHERE event_id = '$a'"))).scalar()
    assert body is None
    await engine.dispose()
