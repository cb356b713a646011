-- The photos of a job, by their id in the photo store (uploaded to intake,
-- metadata stripped), in the complainant's order. Responders fetch them with
-- GetJobPhoto, which records each view.
ALTER TABLE jobs ADD COLUMN photo_ids UUID[] NOT NULL DEFAULT '{}';
