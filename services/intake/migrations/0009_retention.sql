-- Retention. The reference to the recording of a complainant's call is kept
-- a short time (14 days by default); contacts and original descriptions are
-- deleted some time after the request is finished and its survey window has
-- passed. Every deletion is recorded here, append-only, for auditors.
ALTER TABLE service_requests ADD COLUMN voice_recording_uri TEXT;
-- when the sweep deleted the request's contact and original description
ALTER TABLE service_requests ADD COLUMN personal_data_deleted_at TIMESTAMPTZ;
CREATE INDEX service_requests_voice_recordings
    ON service_requests (created_at) WHERE voice_recording_uri IS NOT NULL;
-- finished requests not swept yet, by when they finished: the sweep's walk
-- stays as short as what is due, however many requests were swept before
CREATE INDEX service_requests_to_sweep
    ON service_requests (updated_at)
    WHERE personal_data_deleted_at IS NULL
      AND status IN ('CLOSED', 'SURVEYED', 'CANCELLED', 'REFERRED', 'DUPLICATE');

CREATE TABLE retention_deletions (
    id          BIGSERIAL PRIMARY KEY,
    sr_id       UUID NOT NULL REFERENCES service_requests (sr_id),
    sr_number   TEXT NOT NULL,
    what        TEXT NOT NULL CHECK (what IN ('contact', 'description', 'voice_recording')),
    deleted_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX retention_deletions_of_request ON retention_deletions (sr_id);

CREATE FUNCTION reject_retention_deletion_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'retention deletions are append-only';
END
$$;

CREATE TRIGGER retention_deletions_append_only
    BEFORE UPDATE OR DELETE ON retention_deletions
    FOR EACH ROW EXECUTE FUNCTION reject_retention_deletion_change();

-- When the next sweep is due. One row. A sweep that finds it due moves it on
-- and schedules the next sweep (so sweeps never multiply); the reconciler
-- schedules one when it is overdue (a sweep job lost with Redis).
CREATE TABLE retention_schedule (
    singleton    BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    next_due_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO retention_schedule (next_due_at) VALUES ('-infinity');
