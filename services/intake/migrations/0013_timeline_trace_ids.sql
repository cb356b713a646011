-- The trace of the call or job that wrote each timeline entry, so an SRE goes
-- from a request's timeline to every step's trace. A trace id names no one.
ALTER TABLE timeline_entries ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
