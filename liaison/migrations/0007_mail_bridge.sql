-- The MSSanté mail bridge. Raw mails are kept base64 in TEXT so that the schema is the same on
-- SQLite and PostgreSQL; they stay only while needed (quarantine, outbox until sent).

-- Appservice transactions pushed by the homeserver: stored before answering 200, deduped by id.
CREATE TABLE as_transaction (
    txn_id      TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);

-- Room events of those transactions, to relay or ignore (state: pending, done, ignored).
-- event_json is the event as pushed: ciphertext for an encrypted room.
CREATE TABLE as_event (
    event_id    TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    event_json  TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    received_at BIGINT NOT NULL,
    done_at     BIGINT
);

CREATE INDEX as_event_pending ON as_event (state, received_at);

-- Each puppet: the Matrix account standing for one external MSSanté address.
CREATE TABLE mss_puppet (
    address      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- The rooms a puppet has joined.
CREATE TABLE mss_puppet_room (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);

-- Every mail seen in the applicative mailbox, once: (mailbox, UIDVALIDITY, UID), then Message-ID
-- and content hash. state: received -> posted | quarantined | rejected | duplicate | receipt | ignored.
CREATE TABLE mail_in (
    id           TEXT PRIMARY KEY,
    mailbox      TEXT NOT NULL,
    uidvalidity  BIGINT NOT NULL,
    uid          BIGINT NOT NULL,
    message_id   TEXT,
    content_hash TEXT,
    state        TEXT NOT NULL,
    pathway_id   TEXT,
    event_id     TEXT,
    reason       TEXT,
    received_at  BIGINT NOT NULL,
    done_at      BIGINT,
    mdn_sent_at  BIGINT,
    UNIQUE (mailbox, uidvalidity, uid)
);

CREATE INDEX mail_in_message_id ON mail_in (message_id);
CREATE INDEX mail_in_hash ON mail_in (content_hash);

-- Mails kept aside for the coordination: unroutable, from outside the trusted list, or whose patient
-- contradicts the pathway. number is what coordinators type (!mss router <n> <parcours>).
-- state: waiting -> routing (decided, to post) -> routed | rejected
CREATE TABLE mss_quarantine (
    number       INTEGER PRIMARY KEY,
    mail_in_id   TEXT NOT NULL UNIQUE REFERENCES mail_in (id),
    reason_code  TEXT NOT NULL,
    reason       TEXT NOT NULL,
    from_address TEXT NOT NULL,
    trusted      INTEGER NOT NULL,
    raw          TEXT,
    state        TEXT NOT NULL,
    pathway_id   TEXT,
    decided_by   TEXT,
    decided_at   BIGINT,
    notice_event TEXT,
    received_at  BIGINT NOT NULL
);

-- Mail threads: every Message-ID the bridge knows (in or out), the Matrix event it is, and the
-- thread root in the room. A reply by mail finds its room and thread here.
CREATE TABLE mss_thread (
    message_id    TEXT PRIMARY KEY,
    pathway_id    TEXT NOT NULL,
    room_id       TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    thread_root   TEXT NOT NULL,
    correspondent TEXT NOT NULL,
    subject       TEXT NOT NULL DEFAULT '',
    at            BIGINT NOT NULL
);

CREATE INDEX mss_thread_event ON mss_thread (event_id);

-- External addresses that wrote to a pathway about its patient (policy: team.correspondent).
CREATE TABLE mss_correspondent (
    pathway_id TEXT NOT NULL,
    address    TEXT NOT NULL,
    first_at   BIGINT NOT NULL,
    PRIMARY KEY (pathway_id, address)
);

-- New threads asked by !mss ecrire (decided and traced by the bot), for the bridge to send.
CREATE TABLE mss_request (
    event_id    TEXT PRIMARY KEY,
    pathway_id  TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    address     TEXT NOT NULL,
    body        TEXT,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The durable outbox: one row per mail to send, deduped on the Matrix event it comes from.
-- state: queued -> sent -> delivered | read | failed ; abandoned after give_up_at.
CREATE TABLE mail_out (
    id              TEXT PRIMARY KEY,
    source_event_id TEXT NOT NULL UNIQUE,
    pathway_id      TEXT,
    room_id         TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    raw             TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    give_up_at      BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    retry_notice    TEXT
);

CREATE INDEX mail_out_due ON mail_out (state, next_attempt_at);

-- Receipts (DSN, MDN) matched to an outgoing mail, each shown once in the room.
CREATE TABLE mail_receipt (
    mail_out_id TEXT NOT NULL REFERENCES mail_out (id),
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (mail_out_id, kind, status)
);

-- Small settings of the bridge (the quarantine room's id…).
CREATE TABLE mss_setting (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
