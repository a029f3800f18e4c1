-- Background embedding claims a memory before it embeds it (issue 21, two servers on one
-- database): until this time the memory belongs to the server that claimed it, and the other
-- servers' workers skip it, so no memory is sent to the embedding provider twice. Storing the
-- vector, or changing the memory, clears it.
ALTER TABLE memories ADD COLUMN embedding_claimed_until TEXT;
