-- Which process claimed a row's latest attempt: the key of the advisory lock
-- that process holds for as long as it has the journal open (Journal.claimKey).
-- A row "sending" under a key still held is in flight in a live process, not
-- another process's to resend (claim, writer.go).
ALTER TABLE journal ADD COLUMN IF NOT EXISTS claimed_by integer;
