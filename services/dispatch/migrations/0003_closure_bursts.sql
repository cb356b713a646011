-- Closure bursts: at every closure, how many jobs the closing officer closed
-- in the last minutes. Counted from the CLOSED events, which keep every
-- closure (also of jobs reopened since).
CREATE INDEX job_events_closures_by_actor ON job_events (actor, occurred_at) WHERE event_type = 'CLOSED';
