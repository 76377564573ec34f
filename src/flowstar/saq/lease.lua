-- KEYS[1] lease key, ARGV[1] owner, ARGV[2] ttl ms, ARGV[3] "extend" | "release"
-- Only the owner may extend or release its lease: a worker whose lease expired (it stalled)
-- must not delete the lease of the worker that took over.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == 'release' then
  return redis.call('DEL', KEYS[1])
end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
