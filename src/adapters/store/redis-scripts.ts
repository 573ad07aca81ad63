// The Lua scripts of the Redis store. Redis runs a script to completion
// before any other command, so each is one atomic step. Every key a script
// touches carries the room's hash tag ({room}), so on Redis Cluster they all
// hash to one slot, as a script requires.
//
// Numbers: Redis integers are 64-bit but Lua's are doubles, so offsets are
// exact up to 2^53 (about 9e15 messages in one room). '%.0f' formats them
// without Lua's exponent notation past 1e14.

/**
 * append: KEYS meta (hash: head, epoch), stream (id "<offset>-0"), dedup key.
 * ARGV windowMs, newEpoch, maxPerRoom (0: no cap), messageId, senderId,
 * sentAt, content, traceparent, tracestate, userId (the last three "+value"
 * or "-" for absent). Returns {offset, duplicate (0/1), epoch}.
 */
export const APPEND = `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[2])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seen = redis.call('GET', KEYS[3])
if seen then return {seen, 1, epoch} end
local head = redis.call('HINCRBY', KEYS[1], 'head', 1)
local t = redis.call('TIME')
local at = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local fields = {'i', ARGV[4], 's', ARGV[5], 'w', ARGV[6], 'c', ARGV[7], 'at', at}
if string.sub(ARGV[8], 1, 1) == '+' then
  table.insert(fields, 'tp'); table.insert(fields, string.sub(ARGV[8], 2))
end
if string.sub(ARGV[9], 1, 1) == '+' then
  table.insert(fields, 'ts'); table.insert(fields, string.sub(ARGV[9], 2))
end
if ARGV[10] and string.sub(ARGV[10], 1, 1) == '+' then
  table.insert(fields, 'u'); table.insert(fields, string.sub(ARGV[10], 2))
end
local id = string.format('%.0f', head)
redis.call('XADD', KEYS[2], id .. '-0', unpack(fields))
local window = tonumber(ARGV[1])
if window > 0 then redis.call('SET', KEYS[3], id, 'PX', window) end
local cap = tonumber(ARGV[3])
if cap > 0 and head > cap then
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', head - cap + 1) .. '-0')
end
return {id, 0, epoch}
`;

/**
 * read: KEYS meta, stream. ARGV newEpoch, first offset wanted, limit.
 * Creates the room's metadata when missing. Returns {head, epoch, oldest
 * ('' when empty), entries}; one script, so all from one moment.
 */
export const READ = `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local meta = redis.call('HMGET', KEYS[1], 'head', 'epoch')
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = ''
if first[1] then oldest = first[1][1] end
local entries = {}
local limit = tonumber(ARGV[3])
if limit > 0 then
  entries = redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', '+', 'COUNT', limit)
end
return {meta[1] or '0', meta[2], oldest, entries}
`;

/**
 * trim one room: KEYS meta, stream. ARGV maxPerRoom, maxAgeMs, maxScan.
 * Cuts a prefix (what is kept stays contiguous): everything at or below
 * head - maxPerRoom, then every entry up to the last one stored at or before
 * now - maxAgeMs, looking at no more than maxScan entries per call (the next
 * trim continues). Returns the number of entries deleted.
 */
export const TRIM_ROOM = `
local head = tonumber(redis.call('HGET', KEYS[1], 'head') or '0')
local before = redis.call('XLEN', KEYS[2])
if before == 0 then return 0 end
local keep = tonumber(ARGV[1])
if head > keep then
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', head - keep + 1) .. '-0')
end
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[2])
local entries = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', tonumber(ARGV[3]))
local upto = nil
for _, e in ipairs(entries) do
  local f = e[2]
  local at = nil
  for k = 1, #f, 2 do if f[k] == 'at' then at = tonumber(f[k + 1]) end end
  if at ~= nil and at <= cutoff then upto = e[1] else break end
end
if upto then
  local n = tonumber(string.match(upto, '^(%d+)'))
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', n + 1) .. '-0')
end
return before - redis.call('XLEN', KEYS[2])
`;

/**
 * resume (the compare-and-set that makes a token single-use): KEYS session.
 * ARGV oldHash, newHash, expiresAt, now, userId. Returns {userId, rooms} or
 * nil (another user's session is left untouched).
 */
export const RESUME = `
local s = redis.call('HMGET', KEYS[1], 'token', 'exp', 'user', 'rooms')
if not s[1] or s[1] ~= ARGV[1] or tonumber(s[2]) <= tonumber(ARGV[4]) then return nil end
if (s[3] or '') ~= ARGV[5] then return nil end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'exp', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return {s[3], s[4]}
`;

/**
 * save: KEYS session. ARGV rooms, expiresAt, now. Returns the session's token
 * hash (so the caller extends its index key), or nil when unknown or expired.
 */
export const SAVE = `
local s = redis.call('HMGET', KEYS[1], 'token', 'exp')
if not s[1] or tonumber(s[2]) <= tonumber(ARGV[3]) then return nil end
redis.call('HSET', KEYS[1], 'rooms', ARGV[1], 'exp', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return s[1]
`;
