-- Moves dead letters back to their queue the way Dramatiq enqueues (HSET the payload into
-- ns:q.msgs, RPUSH the id onto ns:q). One call is one batch and is atomic: each message is
-- either still dead or requeued, never both and never neither.
--
-- KEYS: [ns:q.XQ, ns:q.XQ.msgs, ns:q, ns:q.msgs]
-- ARGV: [id1, payload1, id2, payload2, ...] (payloads already rewritten for the queue)
-- Returns: how many messages moved (ids no longer dead are skipped).

local moved = 0
for i = 1, #ARGV, 2 do
    local message_id = ARGV[i]
    if redis.call("zrem", KEYS[1], message_id) > 0 then
        redis.call("hdel", KEYS[2], message_id)
        redis.call("hset", KEYS[4], message_id, ARGV[i + 1])
        redis.call("rpush", KEYS[3], message_id)
        moved = moved + 1
    end
end
return moved
