-- What a site made through the admin API was seeded with, in the snapshot format (token digests,
-- never tokens), so that `POST /_admin/reset?to=seed` returns to it on any instance and after a
-- restart. NULL for a site made without one, and for `default`, whose seed is the instance's.
ALTER TABLE sites ADD COLUMN seed TEXT;
