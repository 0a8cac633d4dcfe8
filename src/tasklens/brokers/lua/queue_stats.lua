-- Reads one Dramatiq queue's counts atomically, so that in-flight (hash size minus list length)
-- never mixes two moments. Read-only and O(1) (plus decoding the head message).
--
-- KEYS: [ns:q, ns:q.msgs, ns:q.DQ.msgs, ns:q.XQ]
-- ARGV: [name of the message option holding when the message became ready, in ms]
-- Returns: {ready, messages, delayed, dead, ready_since_ms or false}, or -1 counts when a key
-- has a type Dramatiq never gives it.
--
-- Dramatiq enqueues with RPUSH and fetches with LPOP, so the head (index 0) waited longest.
-- It became ready at that option when set, else at its eta (a delayed message or a
-- retry moved to the queue), else at its message_timestamp.

-- A key of another type under the namespace (not Dramatiq's) reads as -1: not a queue.
local function count(command, key)
    local result = redis.pcall(command, key)
    if type(result) == "table" then
        return -1
    end
    return result
end

local ready = count("llen", KEYS[1])
local messages = count("hlen", KEYS[2])
local delayed = count("hlen", KEYS[3])
local dead = count("zcard", KEYS[4])
if ready < 0 or messages < 0 or delayed < 0 or dead < 0 then
    return {-1, -1, -1, -1, false}
end

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
