-- The job row remembers where its event log ends, so a log cut short at the
-- end (its last events deleted behind the service's back) no longer verifies.
ALTER TABLE jobs
    ADD COLUMN last_event_sequence BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_event_hash TEXT NOT NULL DEFAULT '';

UPDATE jobs SET (last_event_sequence, last_event_hash) = (
    SELECT sequence, hash FROM job_events e WHERE e.job_id = jobs.job_id ORDER BY sequence DESC LIMIT 1)
WHERE EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = jobs.job_id);
