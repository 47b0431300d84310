-- The tables as they were before the storage layer (service/store.py, service/auth/replay.py), in SQL both
-- SQLite and PostgreSQL accept. IF NOT EXISTS: an existing SQLite file adopts this version as it is
-- (its extra columns - feedback.id, column defaults - stay and are harmless: every insert names its columns).
CREATE TABLE IF NOT EXISTS issued_card (
    uuid        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    service_id  TEXT NOT NULL,
    issued_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    service_id           TEXT NOT NULL,
    card_uuid            TEXT NOT NULL,
    outcome              TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions TEXT NOT NULL DEFAULT '[]',
    override_system      TEXT,
    override_code        TEXT,
    has_user_comment     INTEGER NOT NULL DEFAULT 0,
    outcome_timestamp    TEXT NOT NULL,
    received_at          TEXT NOT NULL
);
-- NULLs are distinct in a plain UNIQUE constraint, so the reason is folded to '' for de-duplication.
CREATE UNIQUE INDEX IF NOT EXISTS feedback_once ON feedback
    (service_id, card_uuid, outcome, accepted_suggestions, COALESCE(override_system, ''), COALESCE(override_code, ''),
     outcome_timestamp);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid);
-- jti is a SHA-256 of issuer and jti; a row lives until the token could no longer be accepted.
CREATE TABLE IF NOT EXISTS jwt_jti (
    jti         TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS jwt_jti_expires_at ON jwt_jti (expires_at);
