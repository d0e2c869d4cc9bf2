-- Documents of a pathway: each file that entered its room, as an index row. The file itself stays
-- in the homeserver's media repository, encrypted; `file` keeps what is needed to fetch and decrypt
-- it again (mxc URL, key, iv, hash). state: pending (seen, not checked yet) -> indexed | refused.
-- `number` is given when indexed, per pathway; versions are computed from (title, doctype, author).
-- A file the bridge checks and uploads before posting it has an `origin` (mail, part) and no event yet:
-- after a crash the same upload is posted again instead of a new one.
CREATE TABLE document (
    id            TEXT PRIMARY KEY,
    event_id      TEXT UNIQUE,
    origin        TEXT UNIQUE,
    pathway_id    TEXT NOT NULL REFERENCES pathway(id),
    room_id       TEXT NOT NULL,
    number        INTEGER,
    state         TEXT NOT NULL,
    source        TEXT NOT NULL,
    author        TEXT NOT NULL,
    author_name   TEXT,
    title         TEXT NOT NULL,
    declared_mime TEXT,
    file          TEXT NOT NULL,
    doctype       TEXT,
    type_code     TEXT,
    mime          TEXT,
    size          BIGINT,
    sha256        TEXT,
    thread_root   TEXT,
    rule          TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    typed_by      TEXT,
    created_at    BIGINT NOT NULL,
    indexed_at    BIGINT,
    UNIQUE (pathway_id, number)
);
CREATE INDEX document_state ON document (state);

-- `!doc envoyer`: the document the bridge packs as IHE_XDM.ZIP into the mail it composes.
ALTER TABLE mss_request ADD COLUMN document_id TEXT;

-- What the bot told a pathway's room once (e.g. that no antivirus is configured).
CREATE TABLE document_notice (
    pathway_id TEXT NOT NULL,
    what       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (pathway_id, what)
);
