/**
 * The Lua script behind every Redis write. It applies generation-scheme.ts atomically, in one
 * round trip, and publishes the change in the same step so no watcher can miss it.
 *
 * KEYS[1]: the key's record. ARGV[1]: "get" (fetch or create), "bump" or "clear";
 * ARGV[2]: the key's change channel (in KEYS[1]'s slot; see redis-keys.ts); ARGV[3]: the
 * tombstone margin in milliseconds; ARGV[4]: "PUBLISH", or "SPUBLISH" in a Cluster.
 * Returns the resulting record in its signed form, as a string: Lua numbers are doubles,
 * exact below 2^53, and `%.0f` avoids the "1.8e+15" that tostring() would produce.
 */
export const WRITE_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
local stored = raw and tonumber(raw) or 0
local mode = ARGV[1]
if mode == 'get' and stored > 0 then
  return raw
end
if mode == 'clear' and stored <= 0 then
  return raw or '0'
end
local previous = stored > 0 and stored or -stored
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local revision = math.max(previous + 1, now)
local record
if mode == 'clear' then
  record = string.format('%.0f', -revision)
  local ahead = math.max(math.ceil((revision - now) / 1000), 0)
  redis.call('SET', KEYS[1], record, 'PX', ahead + tonumber(ARGV[3]))
else
  record = string.format('%.0f', revision)
  redis.call('SET', KEYS[1], record)
end
redis.call(ARGV[4], ARGV[2], record)
return record
`;
