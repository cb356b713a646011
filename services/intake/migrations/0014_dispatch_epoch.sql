-- A request a supervisor unlinked from the job of its incident gets a job of
-- its own, whose events are numbered from 1 again: dispatch's updates are
-- ordered by (epoch, sequence), the epoch counting such moves.
ALTER TABLE service_requests ADD COLUMN dispatch_epoch INTEGER NOT NULL DEFAULT 0;
