-- The task board of a pathway (#25): one encrypted notice pinned beside the summary, edited in place (m.replace)
-- at each change. `version`: how many task changes (task_event rows) the board last shown counted, so a board left
-- behind by a crash is brought up to date at the next start. No patient data: ids and counts.
CREATE TABLE task_board (
    pathway_id  TEXT PRIMARY KEY REFERENCES pathway(id),
    event_id    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The bot's notices about one task (the answer to its creation, to its taking…): a ✋ or ✅ reaction on one of them
-- takes the task or marks it done.
CREATE TABLE task_notice (
    event_id    TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES task(id),
    pathway_id  TEXT NOT NULL
);

-- A command read from a reaction answers the message reacted to (a reaction cannot be quoted).
ALTER TABLE bot_command ADD COLUMN reply_to TEXT;
