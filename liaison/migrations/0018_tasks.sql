-- Tasks of a pathway (!tache): numbered per pathway, the text kept as typed. A task is for one account (`owner`)
-- or, while no one has taken it, requested of a profession (`profession`, a key of policies/professions.py).
-- state: a_faire | prise_en_charge | faite | annulee; a postponement is a new due date, recorded in task_event.
-- `recurrence`: an RRULE (FREQ=DAILY|WEEKLY|MONTHLY): done, the task comes back at its next occurrence.
CREATE TABLE task (
    id          TEXT PRIMARY KEY,
    pathway_id  TEXT NOT NULL REFERENCES pathway(id),
    number      INTEGER NOT NULL,
    text        TEXT NOT NULL,
    category    TEXT NOT NULL DEFAULT 'soins',
    owner       TEXT,
    profession  TEXT,
    due_at      BIGINT,
    recurrence  TEXT,
    state       TEXT NOT NULL DEFAULT 'a_faire',
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (pathway_id, number)
);
CREATE INDEX task_owner ON task (owner, state);
CREATE INDEX task_due ON task (state, due_at);

-- What changed in a task, by whom, when: one row per change, written in the change's own transaction.
-- what: creee | prise | faite | reportee | confiee | annulee; `detail`: the new due date, owner, or the comment.
CREATE TABLE task_event (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES task(id),
    seq         INTEGER NOT NULL,             -- 1, 2, … per task: the order of its changes
    pathway_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    what        TEXT NOT NULL,
    due_at      BIGINT,
    owner       TEXT,
    detail      TEXT,
    UNIQUE (task_id, seq)
);
