-- Dispatch's status updates can move a request back (reassigned, reopened);
-- the sequence of the last one applied keeps late ones from undoing newer ones.
ALTER TABLE service_requests ADD COLUMN dispatch_sequence BIGINT NOT NULL DEFAULT 0;
