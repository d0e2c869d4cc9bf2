-- The patient's care plan (PPCS, « plan personnalisé de coordination en santé »), one per pathway (#26 item 5):
-- its referent (an account), the patient's own words « ce qui compte pour moi » (kept as typed), and its version,
-- counted by care_plan_version. `closed_at`: the pathway was closed, and its plan with it.
CREATE TABLE care_plan (
    pathway_id  TEXT PRIMARY KEY REFERENCES pathway(id),
    referent    TEXT,
    words       TEXT,
    version     INTEGER NOT NULL DEFAULT 0,
    updated_by  TEXT,
    updated_at  BIGINT,
    closed_at   BIGINT
);

-- The plan's goals, numbered 1, 2, … per pathway, the text kept byte for byte.
-- state: en_cours | atteint | abandonne | clos (still en_cours when the pathway was closed).
CREATE TABLE care_goal (
    id          TEXT PRIMARY KEY,
    pathway_id  TEXT NOT NULL REFERENCES pathway(id),
    number      INTEGER NOT NULL,
    text        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'en_cours',
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    reached_at  BIGINT,
    updated_at  BIGINT NOT NULL,
    UNIQUE (pathway_id, number)
);

-- Every change of the plan is a new version: who, when, what (objectif | atteint | abandonne | referent | mots |
-- clos), the goal's number, and what it was changed to (`detail`: the goal's text, the referent, the words).
CREATE TABLE care_plan_version (
    pathway_id  TEXT NOT NULL REFERENCES pathway(id),
    version     INTEGER NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    what        TEXT NOT NULL,
    goal        INTEGER,
    detail      TEXT,
    PRIMARY KEY (pathway_id, version)
);

-- The pinned plan of a pathway, edited in place (m.replace) like the task board: its event, the plan's version it
-- shows and a digest of the attached tasks' states it shows (ids, counts, a hash: no patient data).
CREATE TABLE care_plan_post (
    pathway_id  TEXT PRIMARY KEY REFERENCES pathway(id),
    event_id    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    tasks       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The goal a task serves (care_goal.number of its pathway), NULL when none.
ALTER TABLE task ADD COLUMN goal INTEGER;
