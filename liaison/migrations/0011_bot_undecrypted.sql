-- Commands and files whose room key had not reached the bot yet when they were synced: kept (ciphertext only)
-- so that, once the key comes, they are answered even after a restart (the sync position has moved past them).
CREATE TABLE bot_undecrypted (
    event_id    TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    event_json  TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

-- Whether a command came encrypted: one that shows a patient's data is refused in a clear room, also when it is
-- answered after a restart.
ALTER TABLE bot_command ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 1;
