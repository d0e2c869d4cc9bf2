-- The devices that hold the room key of a pathway's pinned summary (the megolm session it was sent in):
-- a member's device that is not among them cannot read it, and the bot posts the summary again.
CREATE TABLE pathway_summary_reader (
    pathway_id TEXT NOT NULL REFERENCES pathway (id),
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    PRIMARY KEY (pathway_id, user_id, device_id)
);
