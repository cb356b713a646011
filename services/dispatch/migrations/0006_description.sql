-- The complainant's description as responders may read it: e-mail
-- addresses, phone numbers and the complainant's name taken out by intake.
ALTER TABLE jobs ADD COLUMN description TEXT NOT NULL DEFAULT '';
