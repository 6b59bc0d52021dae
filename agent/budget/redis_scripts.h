// The Lua scripts of the Redis ledger. Redis runs a script atomically, so a reserve made by
// one host cannot interleave with another's: each reads the totals and adds to them in one
// step. The C++ side works out which budgets and buckets apply (plan.h) and passes them as
// JSON in ARGV[1]; the scripts apply the rules of plan.cc that must be atomic (refusal,
// warn-level crossing, token buckets). Keep the two in step.
//
// Keys (P = LedgerSpec::key_prefix):
//   P b:<budget>\n<key>  hash: "<bucket>:t" tokens, "<bucket>:u" dollars, "aw"/"am" the
//                        window and mask of warn levels alerted, "name"/"key" for status
//   P r:<limit>\n<key>   hash: "req", "tok" bucket levels, "ts" when (Unix ms)
//   P seq                reservation ids (INCR: unique across hosts)
//   P res:<id>           a reservation (JSON: what to give back or correct)
//   P pending            sorted set: reservation ids by expiry (Unix ms)
//   P index              set of budget hashes, for status
// The scripts reach keys they read from other keys (reservations), so they need a single
// Redis primary, not Redis Cluster.
#pragma once

namespace agentwall::budget::lua {

inline constexpr const char* kPrelude = R"lua(
local P = cjson.decode(ARGV[1])
local SLACK = 1e-9

-- Usage in the window (buckets starting at or after win); older buckets are dropped.
local function totals(h, win)
  local f = redis.call('HGETALL', h)
  local t, u = 0, 0
  for i = 1, #f, 2 do
    local b, kind = string.match(f[i], '^(%-?%d+):([tu])$')
    if b then
      if tonumber(b) >= win then
        if kind == 't' then t = t + tonumber(f[i + 1]) else u = u + tonumber(f[i + 1]) end
      else
        redis.call('HDEL', h, f[i])
      end
    end
  end
  return t, u
end

local function fraction(b, t, u)
  local f = 0
  if b.lt > 0 then f = math.max(f, t / b.lt) end
  if b.lu > 0 then f = math.max(f, u / b.lu) end
  return f
end

local function refuses(b, t, u, et, eu)
  if not b.block then return false end
  if fraction(b, t, u) >= 1 - SLACK then return true end
  if b.lt > 0 and t + et > b.lt then return true end
  return b.lu > 0 and u + eu > b.lu * (1 + SLACK)
end

-- Levels reached and not yet alerted; a calendar window starts with none alerted, a
-- rolling one re-arms a level once usage falls below it.
local function cross(b, frac)
  local w = redis.call('HMGET', b.h, 'aw', 'am')
  local mask = 0
  if w[2] and (b.rolling or tonumber(w[1]) == b.win) then mask = tonumber(w[2]) end
  local crossed = {}
  for i, level in ipairs(b.levels) do
    local bit = 2 ^ (i - 1)
    local set = math.floor(mask / bit) % 2 == 1
    local reached = frac >= level - SLACK
    if reached and not set then
      mask = mask + bit
      table.insert(crossed, level)
    elseif b.rolling and set and not reached then
      mask = mask - bit
    end
  end
  redis.call('HSET', b.h, 'aw', b.win, 'am', mask)
  return crossed
end

local function adjust(h, bucket, dt, du)
  if redis.call('HEXISTS', h, bucket .. ':t') == 1 then
    redis.call('HINCRBY', h, bucket .. ':t', dt)
    redis.call('HINCRBYFLOAT', h, bucket .. ':u', du)
  end
end

local function give_back(rec)
  for _, e in ipairs(rec.b) do adjust(e.h, e.b, -e.t, -e.u) end
end

-- Reservations nobody settled give their estimate back.
local function sweep(now)
  local pending = P.prefix .. 'pending'
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'LIMIT', 0, 100)) do
    local raw = redis.call('GET', P.prefix .. 'res:' .. id)
    if raw then give_back(cjson.decode(raw)) end
    redis.call('DEL', P.prefix .. 'res:' .. id)
    redis.call('ZREM', pending, id)
  end
end

local function refill(level, ts, now, rate, cap)
  if not level then return cap end
  return math.min(cap, tonumber(level) + math.max(0, now - tonumber(ts)) / 60000 * rate)
end

local function wait(level, cost, rate, cap)
  local need = math.min(cost, cap)
  if level >= need - SLACK then return 0 end
  return (need - level) * 60 / rate
end

-- Puts requests and tokens back into a bucket (negative: takes), within its bounds.
local function refund(r, req, tok)
  local v = redis.call('HMGET', r.h, 'req', 'tok')
  if not v[1] then return end
  local q, t = tonumber(v[1]), tonumber(v[2])
  if r.rpm > 0 then q = math.max(-r.rpm * r.burst, math.min(r.rpm * r.burst, q + req)) end
  if r.tpm > 0 then t = math.max(-r.tpm * r.burst, math.min(r.tpm * r.burst, t + tok)) end
  redis.call('HSET', r.h, 'req', q, 'tok', t)
end

local function held_tokens(rec, h)
  for _, e in ipairs(rec.r) do
    if e.h == h then return e.t end
  end
  return 0
end

-- Reads and deletes a reservation.
local function take_reservation(id)
  local key = P.prefix .. 'res:' .. id
  local raw = redis.call('GET', key)
  if not raw then return nil end
  redis.call('DEL', key)
  redis.call('ZREM', P.prefix .. 'pending', id)
  return cjson.decode(raw)
end
)lua";

// ARGV[1]: {prefix, now_ms, ttl_ms, est_t, est_u, budgets: [...], rates: [...]}.
inline constexpr const char* kReserve = R"lua(
local now = P.now_ms
sweep(now)
local out = {ok = true, id = 0, budgets = {}, rates = {}}
local before, buckets = {}, {}
for i, b in ipairs(P.budgets) do
  local t, u = totals(b.h, b.win)
  before[i] = {t, u}
  local refused = refuses(b, t, u, P.est_t, P.est_u)
  if refused then out.ok = false end
  out.budgets[i] = {t = t, u = u, refused = refused, crossed = {}}
end
for i, r in ipairs(P.rates) do
  local v = redis.call('HMGET', r.h, 'req', 'tok', 'ts')
  local s, retry = {}, 0
  if r.rpm > 0 then
    s.req = refill(v[1], v[3], now, r.rpm, r.rpm * r.burst)
    retry = wait(s.req, 1, r.rpm, r.rpm * r.burst)
  end
  if r.tpm > 0 then
    s.tok = refill(v[2], v[3], now, r.tpm, r.tpm * r.burst)
    retry = math.max(retry, wait(s.tok, P.est_t, r.tpm, r.tpm * r.burst))
  end
  buckets[i] = s
  out.rates[i] = {exceeded = retry > 0, retry = retry}
  if retry > 0 and r.block then out.ok = false end
end
if not out.ok then return cjson.encode(out) end

local id = redis.call('INCR', P.prefix .. 'seq')
local rec = {b = {}, r = {}}
for i, b in ipairs(P.budgets) do
  redis.call('HINCRBY', b.h, b.bucket .. ':t', P.est_t)
  redis.call('HINCRBYFLOAT', b.h, b.bucket .. ':u', P.est_u)
  redis.call('HSET', b.h, 'name', b.name, 'key', b.key)
  redis.call('EXPIRE', b.h, b.ttl_s)
  redis.call('SADD', P.prefix .. 'index', b.h)
  local t, u = before[i][1] + P.est_t, before[i][2] + P.est_u
  out.budgets[i] = {t = t, u = u, refused = false, crossed = cross(b, fraction(b, t, u))}
  rec.b[i] = {n = b.name, k = b.key, h = b.h, b = b.bucket, t = P.est_t, u = P.est_u}
end
for i, r in ipairs(P.rates) do
  local s = buckets[i]
  if s.req then s.req = math.max(-r.rpm * r.burst, s.req - 1) end
  if s.tok then s.tok = math.max(-r.tpm * r.burst, s.tok - P.est_t) end
  redis.call('HSET', r.h, 'req', s.req or 0, 'tok', s.tok or 0, 'ts', now)
  redis.call('PEXPIRE', r.h, r.ttl_ms)
  rec.r[i] = {n = r.name, k = r.key, h = r.h, t = P.est_t}
end
-- The expiry is a safety net only: the sweep gives the reservation back long before.
redis.call('SET', P.prefix .. 'res:' .. id, cjson.encode(rec), 'PX', P.ttl_ms + 86400000)
redis.call('ZADD', P.prefix .. 'pending', now + P.ttl_ms, id)
out.id = id
return cjson.encode(out)
)lua";

// ARGV[1]: {prefix, now_ms, id, act_t, act_u, budgets, rates} (the reservation's, as now).
inline constexpr const char* kSettle = R"lua(
sweep(P.now_ms)
local rec = take_reservation(P.id)
if not rec then return cjson.encode({found = false}) end
for _, e in ipairs(rec.b) do adjust(e.h, e.b, P.act_t - e.t, P.act_u - e.u) end
for _, r in ipairs(P.rates) do
  if r.tpm > 0 then refund(r, 0, held_tokens(rec, r.h) - P.act_t) end
end
local out = {found = true, budgets = {}}
for i, b in ipairs(P.budgets) do
  local t, u = totals(b.h, b.win)
  out.budgets[i] = {t = t, u = u, crossed = cross(b, fraction(b, t, u))}
end
return cjson.encode(out)
)lua";

// ARGV[1]: {prefix, id, rates}.
inline constexpr const char* kRelease = R"lua(
local rec = take_reservation(P.id)
if not rec then return 0 end
give_back(rec)
for _, r in ipairs(P.rates) do refund(r, 1, held_tokens(rec, r.h)) end
return 1
)lua";

// ARGV[1]: {prefix, now_ms}. Returns every budget hash, flattened (HGETALL).
inline constexpr const char* kStatus = R"lua(
sweep(P.now_ms)
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', P.prefix .. 'index')) do
  local f = redis.call('HGETALL', h)
  if #f == 0 then redis.call('SREM', P.prefix .. 'index', h) else table.insert(out, f) end
end
return out
)lua";

}  // namespace agentwall::budget::lua
