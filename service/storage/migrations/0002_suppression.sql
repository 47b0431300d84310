-- Issue 16: what was shown to whom (by patient key, an HMAC: never the id), and where each card kind stands.
ALTER TABLE issued_card ADD COLUMN indicator TEXT NOT NULL DEFAULT '';
ALTER TABLE issued_card ADD COLUMN patient_key TEXT;
ALTER TABLE issued_card ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE issued_card ADD COLUMN reshown INTEGER NOT NULL DEFAULT 0;
CREATE INDEX issued_card_kind ON issued_card (kind);
CREATE TABLE suppression (
    patient_key       TEXT NOT NULL,
    kind              TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    shows_unanswered  INTEGER NOT NULL DEFAULT 0,
    suppressed_until  TEXT,
    until_change      INTEGER NOT NULL DEFAULT 0,
    answered          INTEGER NOT NULL DEFAULT 0,
    suppressed_total  BIGINT NOT NULL DEFAULT 0,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (patient_key, kind)
);
CREATE INDEX suppression_kind ON suppression (kind);
-- RxNav answers (service/rxnav.py): one row per RxNorm code, shared by every instance.
CREATE TABLE rxnav_cache (
    rxcui       TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    answer      TEXT NOT NULL,
    fetched_at  BIGINT NOT NULL
);
