/**
 * The Lua script behind every Redis write. It applies generation-scheme.ts atomically, in one
 * round trip, and publishes the change in the same step so no watcher can miss it. A Bump of
 * a live key written in the current epoch (the master's replication ID, from INFO) is its
 * generation + 1; every other write reads Redis's TIME. Live records are stored as
 * "generation:epoch".
 *
 * KEYS[1]: the key's record. ARGV[1]: "get" (fetch or create), "bump" or "clear";
 * ARGV[2]: the key's change channel (in KEYS[1]'s slot; see redis-keys.ts); ARGV[3]: the
 * tombstone margin in milliseconds; ARGV[4]: "PUBLISH", or "SPUBLISH" in a Cluster.
 * Returns the resulting record in its stored form, as a string: Lua numbers are doubles,
 * exact below 2^53, and `%.0f` avoids the "1.8e+15" that tostring() would produce.
 */
export const WRITE_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
local stored = 0
local epoch = ''
if raw then
  local value, tag = string.match(raw, '^(%d+):(%x+)$')
  if not value then value = string.match(raw, '^(%-?%d+)$') end
  stored = value and tonumber(value) or 0
  epoch = tag or ''
end
local mode = ARGV[1]
if mode == 'get' and stored > 0 then
  return raw
end
if mode == 'clear' and stored <= 0 then
  return raw or '0'
end
local current = string.sub(string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or '', 1, 12)
local revision
local now
if mode == 'bump' and stored > 0 and epoch == current then
  revision = stored + 1
else
  local previous = stored > 0 and stored or -stored
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  revision = math.max(previous + 1, now)
end
local record
if mode == 'clear' then
  record = string.format('%.0f', -revision)
  local ahead = math.max(math.ceil((revision - now) / 1000), 0)
  redis.call('SET', KEYS[1], record, 'PX', ahead + tonumber(ARGV[3]))
else
  record = string.format('%.0f', revision) .. ':' .. current
  redis.call('SET', KEYS[1], record)
end
redis.call(ARGV[4], ARGV[2], record)
return record
`;
