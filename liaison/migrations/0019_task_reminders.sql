-- Task reminders (#25): `reminded_due_at` is the due date whose reminder was handled (sent, or refused and traced),
-- set after the send: a task is to be reminded while it differs from `due_at`, so a postponement or a recurring
-- task's next occurrence gets its own reminder, and a crash between the send and this mark resends with the same
-- transaction id (deduplicated by the homeserver).
ALTER TABLE task ADD COLUMN reminded_due_at BIGINT;

-- The overdue list posted once a day in the coordination's room: the Paris day it was handled. No patient data.
CREATE TABLE task_overdue_day (
    day      TEXT PRIMARY KEY,      -- YYYY-MM-DD, Europe/Paris
    sent_at  BIGINT NOT NULL,
    listed   INTEGER NOT NULL       -- how many tasks it listed
);
