-- What responders may read of the complainant's words: the description with
-- e-mail addresses, phone numbers and the complainant's name taken out, made
-- once at filing (the name is encrypted afterwards) and sent with every
-- route job, including the reconciler's.
ALTER TABLE service_requests ADD COLUMN description_for_responders TEXT NOT NULL DEFAULT '';
