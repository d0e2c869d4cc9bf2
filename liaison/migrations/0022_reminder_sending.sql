-- A reminder being sent (bot/reminders.py), recorded BEFORE the send with its transaction id, deleted in the
-- transaction that marks the reminder handled (sent, found already posted, refused, or given up). A row found by a
-- later pass means an earlier attempt may have reached the room: the room's recent timeline is read for the bot's
-- event carrying that transaction id before anything is sent again (the homeserver's own transaction cache lasts
-- about 30 minutes: a restart later than that would post twice). `attempts` and `next_at` pace the retries of a room
-- that refuses the bot (kicked, room gone): bounded, then given up and the coordination told. No patient data:
-- ids, a room id, counts and moments.
CREATE TABLE reminder_sending (
    key         TEXT PRIMARY KEY,       -- "task <task id> <due_at>" | "overdue <YYYY-MM-DD>"
    pathway_id  TEXT,                   -- the task's pathway (NULL: the coordination's overdue list)
    room_id     TEXT NOT NULL,
    txn_id      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,       -- attempts begun, this one included
    first_at    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    next_at     BIGINT NOT NULL         -- no new attempt before this moment (the backoff)
);
