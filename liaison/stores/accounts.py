"""The Matrix sessions a service keeps (the bot's, the bridge's and its puppets'): one device each,
reused across restarts, with the sync position where there is one."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from liaison.matrix import Session
from liaison.stores.retention import Retention
from liaison.stores.base import Store


@dataclass
class SavedAccount:
    session: Session
    sync_token: str | None


class Accounts(Store):
    RETENTION = Retention(no_patient_data={"matrix_account": "Matrix sessions: device, token, sync position"})

    async def account(self, user_id: str) -> SavedAccount | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT user_id, device_id, access_token, sync_token FROM matrix_account WHERE user_id = :u"),
                {"u": user_id})).first()
        if row is None:
            return None
        return SavedAccount(Session(row.user_id, row.device_id, row.access_token), row.sync_token)

    async def save_session(self, session: Session) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM matrix_account WHERE user_id = :u"), {"u": session.user_id})
            await conn.execute(text(
                "INSERT INTO matrix_account (user_id, device_id, access_token) VALUES (:u, :d, :t)"),
                {"u": session.user_id, "d": session.device_id, "t": session.access_token})

    async def save_sync_token(self, user_id: str, token: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE matrix_account SET sync_token = :t WHERE user_id = :u"),
                               {"t": token, "u": user_id})
