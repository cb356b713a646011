-- What the matching rule said beyond agency and priority: the complaint type it
-- names (a request filed under an old name routes by its current one) and
-- whether that makes the request police jurisdiction. NULL on decisions made
-- before this was recorded: dispatch then treats the job as police work.
ALTER TABLE route_decisions
    ADD COLUMN rule_complaint_type TEXT NOT NULL DEFAULT '',
    ADD COLUMN police_matter       BOOLEAN;
