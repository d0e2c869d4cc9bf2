-- RCP meetings (#26): réunions de concertation pluriprofessionnelle, planned in the coordination's room.
-- `rcp` holds no patient data: a moment, a place or a link, a title, the state. `agenda_version` counts the changes of
-- what the agenda says (items, moment, place, participants); `agenda_sent` is the version last sent out, so the agenda
-- goes out once N days before and again after each later change.
CREATE TABLE rcp (
    id            TEXT PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,        -- R-7K3Q9: read aloud, typed by hand
    starts_at     BIGINT NOT NULL,             -- UTC ms
    place         TEXT,                        -- a room or a link
    title         TEXT,
    state         TEXT NOT NULL DEFAULT 'prevue',   -- prevue | ouverte | close | annulee
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    opened_at     BIGINT,
    closed_at     BIGINT,
    agenda_version INTEGER NOT NULL DEFAULT 1,
    agenda_sent   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rcp_state ON rcp (state, starts_at);

-- A case on an RCP's agenda: one pathway, once per meeting, its question as typed.
CREATE TABLE rcp_item (
    id           TEXT PRIMARY KEY,
    rcp_id       TEXT NOT NULL REFERENCES rcp(id),
    pathway_id   TEXT NOT NULL REFERENCES pathway(id),
    number       INTEGER NOT NULL,             -- its place on the agenda
    question     TEXT NOT NULL,
    enrolled_by  TEXT NOT NULL,
    enrolled_at  BIGINT NOT NULL,
    minutes_event TEXT,                        -- the minutes posted in the patient's room (set once sent)
    UNIQUE (rcp_id, pathway_id),
    UNIQUE (rcp_id, number)
);
CREATE INDEX rcp_item_pathway ON rcp_item (pathway_id);

-- Who takes part: a Matrix account of the team, or an external MSSanté address (through the mail bridge).
CREATE TABLE rcp_participant (
    rcp_id       TEXT NOT NULL REFERENCES rcp(id),
    address      TEXT NOT NULL,                -- @compte:serveur or an e-mail address
    added_by     TEXT NOT NULL,
    added_at     BIGINT NOT NULL,
    present_at   BIGINT,                       -- marked present during the meeting
    PRIMARY KEY (rcp_id, address)
);

-- A decision taken during the meeting for one case: the task it created (the tasks issue) carries what to do.
CREATE TABLE rcp_decision (
    id           TEXT PRIMARY KEY,
    rcp_id       TEXT NOT NULL REFERENCES rcp(id),
    item_id      TEXT NOT NULL REFERENCES rcp_item(id),
    pathway_id   TEXT NOT NULL,
    number       INTEGER NOT NULL,             -- 1, 2, … per meeting
    task_id      TEXT NOT NULL REFERENCES task(id),
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (rcp_id, number)
);

-- What the bot sent of an RCP to one recipient: once per (meeting, what, recipient), whatever restarts.
-- what: agenda:<version> | minutes; recipient: a room id or an address. No patient data.
CREATE TABLE rcp_sent (
    rcp_id       TEXT NOT NULL REFERENCES rcp(id),
    what         TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    sent_at      BIGINT NOT NULL,
    PRIMARY KEY (rcp_id, what, recipient)
);

-- Mail for an RCP's external participant, handed to the bridge: the invitation (no pathway: the moment, the place,
-- pathway codes, the .ics) or one case's agenda item or minutes (with its pathway: decided again when the bridge
-- takes it and when the outbox sends it). `room_id`/`event_id`: the patient room's message whose thread a reply joins.
CREATE TABLE rcp_mail (
    id           TEXT PRIMARY KEY,
    rcp_id       TEXT NOT NULL REFERENCES rcp(id),
    kind         TEXT NOT NULL,                -- invitation | agenda | minutes
    address      TEXT NOT NULL,
    pathway_id   TEXT,
    room_id      TEXT,
    event_id     TEXT,
    sender       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    ics          TEXT,
    state        TEXT NOT NULL DEFAULT 'waiting',   -- waiting | queued | refused
    created_at   BIGINT NOT NULL
);
CREATE INDEX rcp_mail_state ON rcp_mail (state);
