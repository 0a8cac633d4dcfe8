-- Reads one Dramatiq queue's counts atomically, so that in-flight (hash size minus list length)
-- never mixes two moments. Read-only and O(1) (plus decoding the head message).
--
-- KEYS: [ns:q, ns:q.msgs, ns:q.DQ.msgs, ns:q.XQ]
-- ARGV: [name of the message option holding when the message became ready, in ms]
-- Returns: {ready, messages, delayed, dead, ready_since_ms or false}
--
-- Dramatiq enqueues with RPUSH and fetches with LPOP, so the head (index 0) waited longest.
-- It became ready at that option when set, else at its eta (a delayed message or a
-- retry moved to the queue), else at its message_timestamp.

local ready = redis.call("llen", KEYS[1])
local messages = redis.call("hlen", KEYS[2])
local delayed = redis.call("hlen", KEYS[3])
local dead = redis.call("zcard", KEYS[4])

local ready_since = false
local head = redis.call("lindex", KEYS[1], 0)
if head then
    local data = redis.call("hget", KEYS[2], head)
    if data then
        local ok, message = pcall(cjson.decode, data)
        if ok and type(message) == "table" then
            local options = message["options"]
            local since = nil
            if type(options) == "table" then
                since = options[ARGV[1]]
                if type(since) ~= "number" then
                    since = options["eta"]
                end
            end
            if type(since) ~= "number" then
                since = message["message_timestamp"]
            end
            if type(since) == "number" then
                ready_since = math.floor(since)
            end
        end
    end
end

return {ready, messages, delayed, dead, ready_since}
