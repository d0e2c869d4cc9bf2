-- The trace: every policy decision and every share, append-only and hash-chained.
-- Its own table, so that it can be stored apart. No content: ids, categories, rules, actors.
-- hash = SHA-256 over the entry's fields and the previous entry's hash.
CREATE TABLE trace_entry (
    seq           BIGINT PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    patient_id    TEXT,
    pathway_id    TEXT,
    data_category TEXT,
    allowed       INTEGER NOT NULL,
    rule          TEXT NOT NULL,
    basis         TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);

CREATE INDEX trace_entry_patient ON trace_entry (patient_id, seq);
