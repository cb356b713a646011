-- Where each job and each event came from, for SREs: the W3C traceparent of
-- the delivery that queued the job (later work links back to it) and the
-- trace id of the call or job that wrote each event. Observability only:
-- neither is part of an event's hash.
ALTER TABLE jobs ADD COLUMN origin_traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE job_events ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
