-- What a site made through the admin API was seeded with, in the snapshot format (token digests,
-- never tokens), so that `POST /_admin/reset?to=seed` returns to it on any instance and after a
-- restart; an empty state for a site made without one. NULL for `default`, whose seed is the
-- instance's, and for sites made before this column.
ALTER TABLE sites ADD COLUMN seed TEXT;
