-- The patient's consents (sharing outside the team of care) and objections, first-class records:
-- who recorded them, when, by which means, for which scope, and the notice given (R.1110-3).
CREATE TABLE consent (
    id           TEXT PRIMARY KEY,
    patient_id   TEXT NOT NULL REFERENCES patient (id),
    scope_kind   TEXT NOT NULL,
    scope        TEXT NOT NULL,
    means        TEXT NOT NULL,
    categories   TEXT NOT NULL DEFAULT '',
    notice       TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    expires_at   BIGINT,
    withdrawn_at BIGINT,
    withdrawn_by TEXT
);

CREATE INDEX consent_patient ON consent (patient_id);

CREATE TABLE objection (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patient (id),
    scope_kind  TEXT NOT NULL,
    scope       TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    lifted_at   BIGINT,
    lifted_by   TEXT
);

CREATE INDEX objection_patient ON objection (patient_id);
