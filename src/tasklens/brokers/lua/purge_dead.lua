-- Deletes every dead letter of a queue atomically. UNLINK frees the memory in the background,
-- so a huge dead-letter queue does not block the server.
--
-- KEYS: [ns:q.XQ, ns:q.XQ.msgs]
-- Returns: how many were deleted.

local dead = redis.call("zcard", KEYS[1])
redis.call("unlink", KEYS[1], KEYS[2])
return dead
