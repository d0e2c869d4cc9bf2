-- The bot's Matrix session: kept so that a restart reuses the same device and sync position.
CREATE TABLE matrix_account (
    user_id      TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL,
    access_token TEXT NOT NULL,
    sync_token   TEXT
);

-- Every command the bot has seen: stored before it is answered, so that a crash
-- loses nothing and a replayed sync answers nothing twice.
-- body is kept only until the answer is sent.
CREATE TABLE bot_command (
    event_id       TEXT PRIMARY KEY,
    room_id        TEXT NOT NULL,
    sender         TEXT NOT NULL,
    body           TEXT,
    thread_root    TEXT,
    received_at    BIGINT NOT NULL,
    answered_at    BIGINT,
    reply_event_id TEXT
);

CREATE INDEX bot_command_unanswered ON bot_command (answered_at);
