-- A supervisor may take a linked report out into a job of its own. The
-- report's row stays, marked, for the record; the request it was keeps the
-- routed dispatch job it arrived with, to be queued from; and each job knows
-- how many times its request moved between jobs (intake orders dispatch's
-- updates by that epoch, then by event sequence).

ALTER TABLE jobs ADD COLUMN request_epoch INTEGER NOT NULL DEFAULT 0;

ALTER TABLE job_reports
    ADD COLUMN dispatch_job     BYTEA,
    ADD COLUMN unlinked_at      TIMESTAMPTZ,
    ADD COLUMN unlinked_by      TEXT,
    ADD COLUMN unlinked_reason  TEXT,
    ADD COLUMN unlinked_to_job  UUID;
