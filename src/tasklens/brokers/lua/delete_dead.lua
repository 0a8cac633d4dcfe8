-- Deletes dead letters, atomically per call.
--
-- KEYS: [ns:q.XQ, ns:q.XQ.msgs]
-- ARGV: [id1, id2, ...]
-- Returns: how many were deleted.

local deleted = 0
for i = 1, #ARGV do
    if redis.call("zrem", KEYS[1], ARGV[i]) > 0 then
        redis.call("hdel", KEYS[2], ARGV[i])
        deleted = deleted + 1
    end
end
return deleted
