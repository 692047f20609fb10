-- The job's request (text, style, settings), stored once per job and read by every step, instead
-- of a copy in every step's input (security review H2). Jobs started before keep it in their
-- steps' inputs and have none here.
ALTER TABLE jobs ADD COLUMN request jsonb;
