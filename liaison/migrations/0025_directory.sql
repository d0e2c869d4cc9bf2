-- The national directory (#27): the ANS's free extracts (Annuaire Santé), imported by `liaison annuaire importer`.
-- Public data on professionals, no patient data. Rows are never deleted by an import: a row gone from a newer extract
-- is marked inactive (`active = 0`) and kept, so a name once shown can still be explained.

-- One activity of one professional (PS_LibreAcces_Personne_activite): a person has as many rows as activities.
-- `activity`: a digest of what tells two activities apart (site's SIRET, FINESS, name, mode, role).
CREATE TABLE directory_person (
    national_id      TEXT NOT NULL,            -- « Identification nationale PP »: 8 + RPPS, or 0 + ADELI
    activity         TEXT NOT NULL,
    id_type          TEXT,                     -- « Type d'identifiant PP »
    rpps             TEXT,                     -- « Identifiant PP »
    civility         TEXT,                     -- « Code civilité d'exercice » (DR, MME, M…)
    last_name        TEXT NOT NULL,
    first_name       TEXT,
    profession_code  TEXT,                     -- TRE_G15 code (« Code profession »)
    profession_label TEXT,
    profession       TEXT,                     -- the policies/professions.py key, when the code is one of ours
    specialty_code   TEXT,                     -- savoir-faire
    specialty_label  TEXT,
    structure        TEXT,                     -- raison sociale (or enseigne) of the site
    siret            TEXT,
    finess           TEXT,
    postcode         TEXT,
    commune          TEXT,
    department       TEXT,
    active           INTEGER NOT NULL DEFAULT 1,
    import_id        INTEGER NOT NULL,         -- the import that last saw it
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (national_id, activity)
);
CREATE INDEX directory_person_rpps ON directory_person (rpps);

-- One MSSanté mailbox (Extraction_Correspondance_MSSante): PER (a person's) or ORG (a service's).
CREATE TABLE directory_mailbox (
    address          TEXT PRIMARY KEY,         -- lower-cased
    kind             TEXT NOT NULL,            -- PER | ORG
    national_id      TEXT,                     -- PER: the owner's « Identification nationale PP »
    civility         TEXT,
    last_name        TEXT,
    first_name       TEXT,
    profession_code  TEXT,
    profession_label TEXT,
    profession       TEXT,
    specialty_label  TEXT,
    structure        TEXT,                     -- « Raison Sociale structure BAL » (or its enseigne)
    service          TEXT,                     -- « Service de rattachement »
    postcode         TEXT,
    commune          TEXT,
    department       TEXT,
    active           INTEGER NOT NULL DEFAULT 1,
    import_id        INTEGER NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX directory_mailbox_person ON directory_mailbox (national_id);

-- Each import: which extract, when, and what it did (`liaison annuaire etat`). `problems`: the first malformed
-- lines, by number and reason (no content).
CREATE TABLE directory_import (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,                -- personnes | mssante | savoirfaire
    file_name    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    state        TEXT NOT NULL,                -- running | done | failed
    read_rows    INTEGER NOT NULL DEFAULT 0,
    added        INTEGER NOT NULL DEFAULT 0,
    changed      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    inactivated  INTEGER NOT NULL DEFAULT 0,
    malformed    INTEGER NOT NULL DEFAULT 0,
    problems     TEXT
);
