-- The complainant's own words may name them (a phone number, an e-mail, a
-- name the redaction missed): the original description is sealed like the
-- contact (AES-256-GCM, key id per row, the request id and "description" as
-- associated data) and only the redacted version stays in plain text
-- (service_requests.description_for_responders). One row per request with a
-- non-empty description.
CREATE TABLE sealed_descriptions (
    sr_id   UUID PRIMARY KEY REFERENCES service_requests (sr_id),
    key_id  TEXT NOT NULL CHECK (key_id <> ''),
    sealed  BYTEA NOT NULL
);
CREATE INDEX sealed_descriptions_key ON sealed_descriptions (key_id);

-- Rows filed before this migration keep only their redacted description:
-- SQL cannot seal, and the plain original must not stay.
ALTER TABLE service_requests DROP COLUMN description;
