-- Protocols applied to a pathway (!protocole appliquer, #25 item 6): one row per (pathway, protocol), written in the
-- transaction that creates the protocol's tasks, so a protocol is applied once and never half. `protocol` is the
-- protocol's name (bot/protocols.py): forgotten with the pathway (it says what the patient is followed for).
CREATE TABLE protocol_applied (
    pathway_id  TEXT NOT NULL REFERENCES pathway(id),
    protocol    TEXT NOT NULL,
    applied_at  BIGINT NOT NULL,
    applied_by  TEXT NOT NULL,
    tasks       INTEGER NOT NULL,          -- how many tasks it created
    PRIMARY KEY (pathway_id, protocol)
);
