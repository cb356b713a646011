-- Reports of one incident, linked to one job. The job's own request is its
-- first report and stays on the job's row; each further report of the same
-- incident (routing's duplicate rule for the complaint type) is a row here
-- instead of a job of its own. The job counts them.

ALTER TABLE jobs ADD COLUMN report_count INTEGER NOT NULL DEFAULT 1;

CREATE TABLE job_reports (
    -- a request is a job or a report, never both, and a report of one job
    sr_id                  UUID PRIMARY KEY,
    sr_number              TEXT NOT NULL UNIQUE,
    job_id                 UUID NOT NULL REFERENCES jobs (job_id),
    linked_at              TIMESTAMPTZ NOT NULL,
    -- when the complainant filed it
    created_at             TIMESTAMPTZ NOT NULL,
    descriptor             TEXT NOT NULL,
    complainant_consented  BOOLEAN NOT NULL,
    photo_count            INTEGER NOT NULL,
    -- the trace of the delivery that linked it: its closure's survey links back
    origin_traceparent     TEXT NOT NULL,
    -- metres between the report and the job's first report; 0: same address
    match_metres           DOUBLE PRECISION NOT NULL,
    -- the job's DUPLICATE_LINKED event that linked it
    link_sequence          BIGINT NOT NULL
);

CREATE INDEX job_reports_job ON job_reports (job_id, linked_at);

-- where a new report looks for its incident: a precinct's open jobs of one
-- complaint type, by first report
CREATE INDEX jobs_open_by_type ON jobs (precinct, complaint_type, created_at)
    WHERE state IN ('QUEUED', 'ASSIGNED', 'ACKNOWLEDGED', 'EN_ROUTE', 'ON_SCENE');
