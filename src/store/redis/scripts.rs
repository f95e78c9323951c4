//! The Lua scripts that make each change of a [`RedisStore`](super::RedisStore) one atomic step.

use redis::Script;

pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) list: Script,
    pub(super) revoke: Script,
    pub(super) record_use: Script,
    pub(super) record_jwt: Script,
    pub(super) list_jwts: Script,
    pub(super) revoke_jwt: Script,
    pub(super) revoke_user_jwts: Script,
    pub(super) jwt_revocations: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            create: Script::new(CREATE_SCRIPT),
            list: Script::new(LIST_SCRIPT),
            revoke: Script::new(REVOKE_SCRIPT),
            record_use: Script::new(RECORD_USE_SCRIPT),
            record_jwt: Script::new(RECORD_JWT_SCRIPT),
            list_jwts: Script::new(LIST_JWTS_SCRIPT),
            revoke_jwt: Script::new(REVOKE_JWT_SCRIPT),
            revoke_user_jwts: Script::new(REVOKE_USER_JWTS_SCRIPT),
            jwt_revocations: Script::new(JWT_REVOCATIONS_SCRIPT),
        }
    }
}

/// Stores a token unless its organization holds the limit already: 1 if stored, 0 if not. Only
/// a set at the limit is counted (and cleared of vanished ids), so a create usually reads
/// nothing. Its first write adds data, so a Redis out of memory refuses the script before it
/// changes anything (Redis checks memory at a script's first write only); the clearing comes
/// last. `KEYS[1]` the token key, `KEYS[2]` the id key, `KEYS[3]` the organization's set;
/// `ARGV[1]` the limit ('' for none), `ARGV[2]` the prefix, `ARGV[3]` the id, `ARGV[4]` the
/// digest hex, `ARGV[5]` the record JSON, `ARGV[6]` the organization, `ARGV[7]` the last use
/// ('' for none).
const CREATE_SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local vanished = {}
local held = 0
if limit and redis.call('SCARD', KEYS[3]) >= limit then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if redis.call('EXISTS', ARGV[2] .. 'id:' .. id) == 1 then
      held = held + 1
    else
      vanished[#vanished + 1] = id
    end
  end
end
local stored = 0
if not limit or held < limit then
  redis.call('HSET', KEYS[1], 'record', ARGV[5], 'organization', ARGV[6])
  if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[1], 'last_used', ARGV[7])
  else
    redis.call('HDEL', KEYS[1], 'last_used')
  end
  redis.call('SET', KEYS[2], ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[3])
  stored = 1
end
for _, id in ipairs(vanished) do
  redis.call('SREM', KEYS[3], id)
end
return stored
";

/// Lists an organization's tokens: `[record json, last_used or "", ...]`, dropping ids whose token
/// is gone. `KEYS[1]` the organization's set; `ARGV[1]` the prefix.
const LIST_SCRIPT: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local id_key = ARGV[1] .. 'id:' .. id
  local digest = redis.call('GET', id_key)
  local found = false
  if digest then
    local fields = redis.call('HMGET', ARGV[1] .. 'token:' .. digest, 'record', 'last_used')
    if fields[1] then
      out[#out + 1] = fields[1]
      out[#out + 1] = fields[2] or ''
      found = true
    end
  end
  if not found then
    redis.call('SREM', KEYS[1], id)
    redis.call('DEL', id_key)
  end
end
return out
";

/// Deletes a token if it belongs to the organization and announces it: 1 if deleted, else 0.
/// It only deletes, so it runs on a Redis out of memory too.
/// `KEYS[1]` the id key, `KEYS[2]` the organization's set; `ARGV[1]` the prefix, `ARGV[2]` the
/// organization, `ARGV[3]` the id.
const REVOKE_SCRIPT: &str = r"
local digest = redis.call('GET', KEYS[1])
if not digest then
  return 0
end
local token_key = ARGV[1] .. 'token:' .. digest
local owner = redis.call('HGET', token_key, 'organization')
if owner ~= ARGV[2] then
  return 0
end
redis.call('DEL', token_key, KEYS[1])
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[1] .. 'revocations', digest)
return 1
";

/// Remembers a minted JWT until it expires. `KEYS[1]` its key, `KEYS[2]` its organization's
/// set; `ARGV[1]` the record JSON, `ARGV[2]` the organization, `ARGV[3]` the expiry in
/// milliseconds, `ARGV[4]` the jti.
const RECORD_JWT_SCRIPT: &str = r"
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'organization', ARGV[2], 'expires_at', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
";

/// An organization's minted JWTs still kept, dropping the jtis of expired ones. `KEYS[1]` the
/// organization's set; `ARGV[1]` the prefix.
const LIST_JWTS_SCRIPT: &str = r"
local out = {}
for _, jti in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('HGET', ARGV[1] .. 'jwt:' .. jti, 'record')
  if record then
    out[#out + 1] = record
  else
    redis.call('SREM', KEYS[1], jti)
  end
end
return out
";

/// Revokes a JWT if it belongs to the organization, has not expired and is not revoked already,
/// and announces it: 1 if revoked, else 0. `KEYS[1]` its key, `KEYS[2]` the revoked jtis' hash;
/// `ARGV[1]` the organization, `ARGV[2]` the jti, `ARGV[3]` now in milliseconds, `ARGV[4]` the
/// channel.
const REVOKE_JWT_SCRIPT: &str = r"
local fields = redis.call('HMGET', KEYS[1], 'organization', 'expires_at')
if fields[1] ~= ARGV[1] or tonumber(fields[2]) <= tonumber(ARGV[3]) then
  return 0
end
if redis.call('HSETNX', KEYS[2], ARGV[2], fields[2]) == 0 then
  return 0
end
redis.call('PUBLISH', ARGV[4], 'jwt')
return 1
";

/// Revokes a user's JWTs issued before a cutoff and announces it, keeping the later of this
/// cutoff and one already held (and the later time to forget). `KEYS[1]` the users' hash; `ARGV[1]`
/// the field (organization and user), `ARGV[2]` 'cutoff forget_at', `ARGV[3]` the channel.
const REVOKE_USER_JWTS_SCRIPT: &str = r"
local cutoff, forget_at = string.match(ARGV[2], '^(%d+) (%d+)$')
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local held_cutoff, held_forget_at = string.match(held, '^(%d+) (%d+)$')
  if held_cutoff and tonumber(held_cutoff) > tonumber(cutoff) then cutoff = held_cutoff end
  if held_forget_at and tonumber(held_forget_at) > tonumber(forget_at) then
    forget_at = held_forget_at
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cutoff .. ' ' .. forget_at)
redis.call('PUBLISH', ARGV[3], 'jwt')
return 1
";

/// The JWT revocations in force, forgetting those past their time: `{{jti, expiry, ...},
/// {field, 'cutoff forget_at', ...}}`. `KEYS[1]` the revoked jtis' hash, `KEYS[2]` the users' hash;
/// `ARGV[1]` now in milliseconds.
const JWT_REVOCATIONS_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local jtis, users = {}, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then
    jtis[#jtis + 1] = all[i]
    jtis[#jtis + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local forget_at = tonumber(string.match(all[i + 1], ' (%d+)$'))
  if forget_at and forget_at > now then
    users[#users + 1] = all[i]
    users[#users + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[2], all[i])
  end
end
return {jtis, users}
";

/// Moves a token's `last_used` forward, never back. `KEYS[1]` the id key; `ARGV[1]` the prefix,
/// `ARGV[2]` the time in milliseconds.
const RECORD_USE_SCRIPT: &str = r"
local digest = redis.call('GET', KEYS[1])
if not digest then
  return 0
end
local token_key = ARGV[1] .. 'token:' .. digest
if redis.call('EXISTS', token_key) == 0 then
  return 0
end
local current = tonumber(redis.call('HGET', token_key, 'last_used') or '0')
if current < tonumber(ARGV[2]) then
  redis.call('HSET', token_key, 'last_used', ARGV[2])
end
return 1
";
