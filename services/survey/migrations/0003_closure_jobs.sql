-- Reports of one incident are closed together with their one dispatch job,
-- a closure event each: the figures of closure quality count job closures
-- once, so linking neither hides nor inflates them. NULL for closures
-- recorded before the job was kept (each counts as a job of its own).
ALTER TABLE closures ADD COLUMN job_id UUID;
