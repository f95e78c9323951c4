-- The members a narrowed token may act as, by id, as a JSON array; NULL: any member.
ALTER TABLE {prefix}tokens ADD COLUMN users TEXT;
