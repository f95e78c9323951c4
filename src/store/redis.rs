//! [`RedisStore`]: one set of tokens shared by every instance of an app, kept in Redis.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use futures_util::StreamExt as _;
use redis::{
    Client, ErrorKind, FromRedisValue, RedisError, RedisResult, Script, ScriptInvocation,
    aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream},
};
use tokio::time::{Interval, MissedTickBehavior};
use uuid::Uuid;

use super::{
    DEFAULT_OPERATION_TIMEOUT, StoreError, TokenStore,
    revocations::{Announcement, RevocationFeed, RevocationSubscription},
};
use crate::{
    jwt::{JwtRevocations, MintedJwt, UserRevocation},
    record::TokenRecord,
    time::Timestamp,
    token::TokenDigest,
    usage::LastUsed,
};

/// The key prefix unless configured otherwise.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub const DEFAULT_KEY_PREFIX: &str = "tower-impersonation:";

/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the server may take to answer one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an idle revocation subscription is checked with a `PING`, and how long the answer
/// may take.
const HEARTBEAT: Duration = Duration::from_secs(5);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps tokens in Redis, so every instance of an app honours the same tokens and a revocation on
/// one is a revocation on all.
///
/// # Layout
///
/// With the default prefix `tower-impersonation:`, a token is kept under three keys, none of which
/// holds its secret:
///
/// - `{prefix}token:{digest hex}`: a hash with `record` (the [`TokenRecord`] as JSON),
///   `organization`, and `last_used` (milliseconds since the epoch, once the token was used);
/// - `{prefix}id:{uuid}`: the digest hex, to revoke by id;
/// - `{prefix}org:{organization}`: the set of the organization's token ids, for listing.
///
/// A token past its expiry is kept, found and listed (as expired) until it is revoked, as every
/// store of this crate does; the layer refuses it. Listing removes the ids of vanished tokens
/// (deleted by hand, say) from the organization's set.
///
/// Creation is one Lua script that counts the organization's live tokens against the limit and
/// stores the token only below it, so instances sharing the Redis never pass the limit together;
/// revocation is one Lua script that deletes the token
/// only if it belongs to the given organization and then publishes its digest hex on
/// `{prefix}revocations`: the store's [`RevocationFeed`], for
/// [`CachingStore::listen_for_revocations`](super::CachingStore::listen_for_revocations).
///
/// Several apps can share one Redis with different [key prefixes](RedisStore::key_prefix). The
/// scripts name keys they compute, so the store wants a single Redis (or a primary with replicas),
/// not Redis Cluster; Redis 5 or later, or Valkey.
///
/// # Failures
///
/// Each change is one Lua script (a JWT's revoke reads first), and Redis runs a script whole,
/// with nothing in between. Redis refuses a script's writes (out of memory, read-only, failed
/// snapshot) only at its first write command and never stops a script that has written, so a
/// refused script has changed nothing. What the store answers:
///
/// - `Ok`: Redis applied the change. How long it lasts is Redis's to say: a Redis without an
///   append-only file synced on every write (`appendfsync always`) can lose the latest writes
///   when it crashes, and one replaced by a replica loses what had not reached the replica yet.
///   Run it with `maxmemory-policy noeviction`: an evicting Redis forgets tokens and revocations
///   on its own, and a forgotten JWT revocation lets the JWT in again.
/// - [`StoreError::Backend`] when Redis answered with an error or could not be reached: nothing
///   changed. Redis out of memory (`OOM`, under `maxmemory` with `noeviction`) refuses creating
///   a token, recording a JWT or a use, and revoking a JWT or a user's JWTs; revoking a token
///   only deletes, so it still succeeds. A read-only replica (`READONLY`) and a Redis that
///   failed to save its snapshot (`MISCONF`, with `stop-writes-on-bgsave-error`) refuse every
///   write. Lookups still answer, and the next operation once Redis accepts writes succeeds.
/// - [`StoreError::Backend`] when the connection broke during the command, or after the
///   [operation timeout](RedisStore::operation_timeout): the one failure that may have changed
///   something, since Redis may have received the command and applied it, or apply it later,
///   without its answer reaching the store. A create may have stored a token whose secret
///   nobody received (listed, and counted towards the limit, until revoked); a revoke may have
///   revoked; recording a JWT may have kept a record of one never handed out; revoking a user's
///   JWTs may have taken effect, even after a retry made since (then with the first attempt's
///   earlier cutoff). Retrying a revoke is safe: it answers `true` if this attempt revoked and
///   `false` if the token or JWT was already gone, so after either the revocation holds.
///
/// The [`ConnectionManager`] replaces a broken connection in the background, and a command
/// refused a connection (so never sent) is sent once more on the new one, so the first
/// operation after Redis is back succeeds, without restarting the app.
///
/// Error messages never contain a secret or the Redis URL.
///
/// Clones share the connection. Use it from within a Tokio runtime with its time driver enabled.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisStore {
    client: Client,
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

struct Scripts {
    create: Script,
    list: Script,
    revoke: Script,
    record_use: Script,
    record_jwt: Script,
    list_jwts: Script,
    revoke_jwt: Script,
    revoke_user_jwts: Script,
    jwt_revocations: Script,
}

/// Stores a token unless its organization holds the limit already: 1 if stored, 0 if not. Only
/// a set at the limit is counted (and cleared of vanished ids), so a create usually reads nothing.
/// Its first write adds data, so a Redis out of memory refuses the script before it changes
/// anything (Redis checks memory at a script's first write only); the clearing comes last.
/// KEYS[1] the token key, KEYS[2] the id key, KEYS[3] the organization's set; ARGV[1] the limit
/// ('' for none), ARGV[2] the prefix, ARGV[3] the id, ARGV[4] the digest hex, ARGV[5] the record
/// JSON, ARGV[6] the organization, ARGV[7] the last use ('' for none).
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
/// is gone. KEYS[1] the organization's set; ARGV[1] the prefix.
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
/// KEYS[1] the id key, KEYS[2] the organization's set; ARGV[1] the prefix, ARGV[2] the
/// organization, ARGV[3] the id.
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

/// Remembers a minted JWT until it expires. KEYS[1] its key, KEYS[2] its organization's set;
/// ARGV[1] the record JSON, ARGV[2] the organization, ARGV[3] the expiry in milliseconds, ARGV[4]
/// the jti.
const RECORD_JWT_SCRIPT: &str = r"
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'organization', ARGV[2], 'expires_at', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
";

/// An organization's minted JWTs still kept, dropping the jtis of expired ones. KEYS[1] the
/// organization's set; ARGV[1] the prefix.
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
/// and announces it: 1 if revoked, else 0. KEYS[1] its key, KEYS[2] the revoked jtis' hash;
/// ARGV[1] the organization, ARGV[2] the jti, ARGV[3] now in milliseconds, ARGV[4] the channel.
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
/// cutoff and one already held (and the later time to forget). KEYS[1] the users' hash; ARGV[1]
/// the field (organization and user), ARGV[2] 'cutoff forget_at', ARGV[3] the channel.
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
/// {field, 'cutoff forget_at', ...}}`. KEYS[1] the revoked jtis' hash, KEYS[2] the users' hash;
/// ARGV[1] now in milliseconds.
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

/// Moves a token's `last_used` forward, never back. KEYS[1] the id key; ARGV[1] the prefix,
/// ARGV[2] the time in milliseconds.
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

impl RedisStore {
    /// Connects to Redis at `url` (`redis://[:password@]host[:port][/db]`), with the default key
    /// prefix `tower-impersonation:`.
    ///
    /// Fails with [`StoreError::Backend`] when the URL is not a Redis URL or Redis cannot be
    /// reached; the message does not repeat the URL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|error| backend("read the Redis URL", &error))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connecting = ConnectionManager::new_with_config(client.clone(), config);
        let connection = within(DEFAULT_OPERATION_TIMEOUT, "connect", connecting).await?;
        Ok(Self {
            client,
            connection,
            prefix: DEFAULT_KEY_PREFIX.into(),
            timeout: DEFAULT_OPERATION_TIMEOUT,
            scripts: Arc::new(Scripts {
                create: Script::new(CREATE_SCRIPT),
                list: Script::new(LIST_SCRIPT),
                revoke: Script::new(REVOKE_SCRIPT),
                record_use: Script::new(RECORD_USE_SCRIPT),
                record_jwt: Script::new(RECORD_JWT_SCRIPT),
                list_jwts: Script::new(LIST_JWTS_SCRIPT),
                revoke_jwt: Script::new(REVOKE_JWT_SCRIPT),
                revoke_user_jwts: Script::new(REVOKE_USER_JWTS_SCRIPT),
                jwt_revocations: Script::new(JWT_REVOCATIONS_SCRIPT),
            }),
        })
    }

    /// Puts every key of this store under `prefix` (default `tower-impersonation:`), so several
    /// apps can share one Redis. Instances that should honour the same tokens use the same prefix.
    #[must_use]
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one operation may take before it fails with [`StoreError::Backend`] (default 2
    /// seconds).
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The channel on which revocations are published: `{prefix}revocations`, with the revoked
    /// token's digest hex as the message.
    pub fn revocation_channel(&self) -> String {
        format!("{}revocations", self.prefix)
    }

    /// Runs a script, as [`RedisStore::send`] does.
    async fn invoke<T: FromRedisValue>(
        &self,
        action: &str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let run = |mut connection: ConnectionManager| async move {
            invocation.invoke_async(&mut connection).await
        };
        self.send(action, run).await
    }

    /// Sends a command within the operation timeout, a second time if the connection was
    /// refused: a refused command never reached Redis, and the refusal set the manager to
    /// connect again, so the first command after Redis is back does not fail on a connection
    /// that failed while it was away.
    async fn send<T, F>(
        &self,
        action: &str,
        command: impl Fn(ConnectionManager) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let attempts = async {
            match command(self.connection.clone()).await {
                Err(error) if error.is_connection_refusal() => {
                    command(self.connection.clone()).await
                }
                answered => answered,
            }
        };
        within(self.timeout, action, attempts).await
    }

    fn token_key(&self, digest_hex: &str) -> String {
        format!("{}token:{digest_hex}", self.prefix)
    }

    fn id_key(&self, id: Uuid) -> String {
        format!("{}id:{}", self.prefix, id.hyphenated())
    }

    fn organization_key(&self, organization: &str) -> String {
        format!("{}org:{organization}", self.prefix)
    }

    async fn insert(&self, record: TokenRecord, limit: usize) -> Result<(), StoreError> {
        let json = serde_json::to_string(&record)
            .map_err(|error| StoreError::Encode(error.to_string()))?;
        let digest_hex = record.digest.to_hex();
        let optional = |value: Option<u64>| value.map_or_else(String::new, |v| v.to_string());
        let mut invocation = self.scripts.create.prepare_invoke();
        invocation
            .key(self.token_key(&digest_hex))
            .key(self.id_key(record.id))
            .key(self.organization_key(&record.organization))
            .arg(if limit == usize::MAX {
                String::new()
            } else {
                limit.to_string()
            })
            .arg(&*self.prefix)
            .arg(record.id.hyphenated().to_string())
            .arg(&digest_hex)
            .arg(&json)
            .arg(&*record.organization)
            .arg(optional(record.last_used.get().map(Timestamp::as_millis)));
        match self.invoke::<u8>("create", &invocation).await? {
            1 => Ok(()),
            _ => Err(StoreError::LimitReached { limit }),
        }
    }

    async fn find(&self, digest_hex: String) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.token_key(&digest_hex))
            .arg("record")
            .arg("last_used");
        let command = &command;
        let query = |mut connection: ConnectionManager| async move {
            command
                .query_async::<(Option<String>, Option<u64>)>(&mut connection)
                .await
        };
        let (json, last_used) = self.send("lookup", query).await?;
        let Some(json) = json else {
            return Ok(None);
        };
        let record = decode(&json, last_used)?;
        if record.digest.to_hex() != digest_hex {
            return Err(StoreError::Decode(
                "a record is stored under another token's digest".to_owned(),
            ));
        }
        Ok(Some(Arc::new(record)))
    }

    async fn collect(&self, organization: &str) -> Result<Vec<Arc<TokenRecord>>, StoreError> {
        let mut invocation = self.scripts.list.prepare_invoke();
        invocation
            .key(self.organization_key(organization))
            .arg(&*self.prefix);
        let fields = self.invoke::<Vec<String>>("list", &invocation).await?;
        let mut records = fields
            .chunks(2)
            .map(|pair| {
                let last_used = match pair.get(1).map(String::as_str) {
                    None | Some("") => None,
                    Some(millis) => Some(millis.parse::<u64>().map_err(|_| {
                        StoreError::Decode("a last use is not a number".to_owned())
                    })?),
                };
                decode(&pair[0], last_used).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|record| (record.created_at, record.id));
        Ok(records)
    }

    async fn delete(&self, organization: &str, id: Uuid) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.revoke.prepare_invoke();
        invocation
            .key(self.id_key(id))
            .key(self.organization_key(organization))
            .arg(&*self.prefix)
            .arg(organization)
            .arg(id.hyphenated().to_string());
        Ok(self.invoke::<i64>("revoke", &invocation).await? == 1)
    }

    fn jwt_key(&self, jti: Uuid) -> String {
        format!("{}jwt:{}", self.prefix, jti.hyphenated())
    }

    fn organization_jwts_key(&self, organization: &str) -> String {
        format!("{}jwts:{organization}", self.prefix)
    }

    fn revoked_jtis_key(&self) -> String {
        format!("{}jwt-revoked", self.prefix)
    }

    fn user_revocations_key(&self) -> String {
        format!("{}jwt-users", self.prefix)
    }

    async fn insert_jwt(&self, jwt: MintedJwt) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(&jwt).map_err(|error| StoreError::Encode(error.to_string()))?;
        let mut invocation = self.scripts.record_jwt.prepare_invoke();
        invocation
            .key(self.jwt_key(jwt.jti))
            .key(self.organization_jwts_key(&jwt.organization))
            .arg(json)
            .arg(&*jwt.organization)
            .arg(jwt.expires_at.as_millis())
            .arg(jwt.jti.hyphenated().to_string());
        self.invoke::<i64>("record a JWT", &invocation).await?;
        Ok(())
    }

    async fn collect_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> Result<Vec<MintedJwt>, StoreError> {
        let mut invocation = self.scripts.list_jwts.prepare_invoke();
        invocation
            .key(self.organization_jwts_key(organization))
            .arg(&*self.prefix);
        let records = self.invoke::<Vec<String>>("list JWTs", &invocation).await?;
        let revocations = self.read_jwt_revocations(now).await?;
        let mut live = Vec::new();
        for json in records {
            let jwt: MintedJwt = serde_json::from_str(&json)
                .map_err(|error| StoreError::Decode(error.to_string()))?;
            if jwt.expires_at > now && !revocations.is_revoked(&jwt.identity()) {
                live.push(jwt);
            }
        }
        live.sort_by_key(|jwt| (jwt.issued_at, jwt.jti));
        Ok(live)
    }

    async fn revoke_one_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // One revoked with its user's JWTs is no longer live: there is nothing left to revoke.
        let live = self.collect_jwts(organization, now).await?;
        if !live.iter().any(|jwt| jwt.jti == jti) {
            return Ok(false);
        }
        let mut invocation = self.scripts.revoke_jwt.prepare_invoke();
        invocation
            .key(self.jwt_key(jti))
            .key(self.revoked_jtis_key())
            .arg(organization)
            .arg(jti.hyphenated().to_string())
            .arg(now.as_millis())
            .arg(self.revocation_channel());
        Ok(self.invoke::<i64>("revoke a JWT", &invocation).await? == 1)
    }

    async fn revoke_all_user_jwts(&self, revocation: UserRevocation) -> Result<(), StoreError> {
        let field = serde_json::to_string(&(&*revocation.organization, &*revocation.user_id))
            .map_err(|error| StoreError::Encode(error.to_string()))?;
        let times = format!(
            "{} {}",
            revocation.cutoff.as_millis(),
            revocation.forget_at.as_millis()
        );
        let mut invocation = self.scripts.revoke_user_jwts.prepare_invoke();
        invocation
            .key(self.user_revocations_key())
            .arg(field)
            .arg(times)
            .arg(self.revocation_channel());
        self.invoke::<i64>("revoke a user's JWTs", &invocation)
            .await?;
        Ok(())
    }

    async fn read_jwt_revocations(&self, now: Timestamp) -> Result<JwtRevocations, StoreError> {
        let mut invocation = self.scripts.jwt_revocations.prepare_invoke();
        invocation
            .key(self.revoked_jtis_key())
            .key(self.user_revocations_key())
            .arg(now.as_millis());
        let (jtis, users) = self
            .invoke::<(Vec<String>, Vec<String>)>("read JWT revocations", &invocation)
            .await?;
        jwt_revocations(&jtis, &users)
    }

    async fn touch(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        let mut invocation = self.scripts.record_use.prepare_invoke();
        invocation
            .key(self.id_key(id))
            .arg(&*self.prefix)
            .arg(at.as_millis());
        self.invoke::<i64>("record a use", &invocation).await?;
        Ok(())
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's connection details may hold a password: left out.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenStore for RedisStore {
    fn create(
        &self,
        record: TokenRecord,
        limit: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert(record, limit)
    }

    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send {
        self.find(digest.to_hex())
    }

    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send {
        self.collect(organization)
    }

    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.delete(organization, id)
    }

    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.touch(id, at)
    }

    fn record_jwt(&self, jwt: MintedJwt) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert_jwt(jwt)
    }

    fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MintedJwt>, StoreError>> + Send {
        self.collect_jwts(organization, now)
    }

    fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.revoke_one_jwt(organization, jti, now)
    }

    fn revoke_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.revoke_all_user_jwts(revocation)
    }

    fn jwt_revocations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<JwtRevocations, StoreError>> + Send {
        self.read_jwt_revocations(now)
    }
}

/// Reads the revocations kept as `[jti, expiry, ...]` and `[field, "cutoff forget_at", ...]`.
fn jwt_revocations(jtis: &[String], users: &[String]) -> Result<JwtRevocations, StoreError> {
    let unreadable = || StoreError::Decode("a JWT revocation is unreadable".to_owned());
    let millis = |text: &str| text.parse::<u64>().map(Timestamp::from_millis);
    let mut revocations = JwtRevocations::new();
    for pair in jtis.chunks_exact(2) {
        let jti = Uuid::parse_str(&pair[0]).map_err(|_| unreadable())?;
        revocations.revoke_jti(jti, millis(&pair[1]).map_err(|_| unreadable())?);
    }
    for pair in users.chunks_exact(2) {
        let (organization, user_id): (String, String) =
            serde_json::from_str(&pair[0]).map_err(|_| unreadable())?;
        let (cutoff, forget_at) = pair[1].split_once(' ').ok_or_else(unreadable)?;
        revocations.revoke_user(UserRevocation {
            organization: organization.into(),
            user_id: user_id.into(),
            cutoff: millis(cutoff).map_err(|_| unreadable())?,
            forget_at: millis(forget_at).map_err(|_| unreadable())?,
        });
    }
    Ok(revocations)
}

#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
impl RevocationFeed for RedisStore {
    type Subscription = RedisRevocations;

    /// Opens a pub/sub connection of its own, subscribed to the
    /// [revocation channel](RedisStore::revocation_channel).
    fn subscribe(&self) -> impl Future<Output = Result<RedisRevocations, StoreError>> + Send {
        let channel = self.revocation_channel();
        let subscribing = async move {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok(pubsub)
        };
        async move {
            let (sink, messages) = within(self.timeout, "subscribe to revocations", subscribing)
                .await?
                .split();
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
            heartbeat.reset();
            Ok(RedisRevocations {
                sink,
                messages,
                heartbeat,
            })
        }
    }
}

/// Revocations announced on a [`RedisStore`]'s channel, on a pub/sub connection that is checked
/// with a `PING` every 5 seconds when idle, so a silently dropped connection is noticed.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisRevocations {
    sink: PubSubSink,
    messages: PubSubStream,
    heartbeat: Interval,
}

impl fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocations").finish_non_exhaustive()
    }
}

impl RevocationSubscription for RedisRevocations {
    async fn next(&mut self) -> Result<Announcement, StoreError> {
        loop {
            tokio::select! {
                message = self.messages.next() => {
                    let Some(message) = message else {
                        return Err(StoreError::Backend(
                            "redis: the revocation subscription was closed".to_owned(),
                        ));
                    };
                    let payload = std::str::from_utf8(message.get_payload_bytes()).unwrap_or("");
                    return Ok(Announcement::parse(payload));
                }
                _ = self.heartbeat.tick() => {
                    let ping = self.sink.ping::<redis::Value>();
                    within(HEARTBEAT_TIMEOUT, "check the revocation subscription", ping).await?;
                }
            }
        }
    }
}

/// Reads a stored record back, with its separately kept last use.
fn decode(json: &str, last_used: Option<u64>) -> Result<TokenRecord, StoreError> {
    let mut record: TokenRecord =
        serde_json::from_str(json).map_err(|error| StoreError::Decode(error.to_string()))?;
    if let Some(millis) = last_used {
        let at = Timestamp::from_millis(millis);
        let latest = record.last_used.get().map_or(at, |known| known.max(at));
        record.last_used = LastUsed::new(Some(latest));
    }
    Ok(record)
}

/// Runs a Redis operation within `timeout`, mapping every failure to [`StoreError::Backend`].
async fn within<T>(
    timeout: Duration,
    action: &str,
    operation: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(backend(action, &error)),
        Err(_) => Err(StoreError::Backend(format!(
            "redis: could not {action}: timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

/// A message for a Redis failure: its category, and the server's own words for server errors.
/// Client-side details (which may name the URL, and with it a password) are left out; token
/// secrets never reach Redis, so no message can hold one.
fn backend(action: &str, error: &RedisError) -> StoreError {
    let mut why = error.category().to_owned();
    if error.is_timeout() {
        why.push_str(", timed out");
    } else if error.is_connection_refusal() {
        why.push_str(", connection refused");
    } else if error.is_connection_dropped() {
        why.push_str(", connection dropped");
    }
    let from_server = matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension);
    if from_server {
        if let Some(code) = error.code() {
            why.push_str(": ");
            why.push_str(code);
        }
        if let Some(detail) = error.detail() {
            why.push(' ');
            why.push_str(detail);
        }
    }
    StoreError::Backend(format!("redis: could not {action}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_do_not_repeat_the_url() {
        let error = Client::open("redis://:hunter2@[not a host/").unwrap_err();
        let StoreError::Backend(message) = backend("read the Redis URL", &error) else {
            unreachable!()
        };
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.starts_with("redis: could not read the Redis URL"));
    }

    #[test]
    fn a_separate_last_use_only_moves_forward() {
        let (_, mut record) = TokenRecord::issue(
            &crate::token::TokenPrefix::default(),
            "acme",
            "admin",
            crate::role::Roles::full_access(),
        );
        record.last_used = LastUsed::new(Some(Timestamp::from_millis(2000)));
        let json = serde_json::to_string(&record).unwrap();
        let later = decode(&json, Some(3000)).unwrap();
        assert_eq!(later.last_used.get(), Some(Timestamp::from_millis(3000)));
        let earlier = decode(&json, Some(1000)).unwrap();
        assert_eq!(earlier.last_used.get(), Some(Timestamp::from_millis(2000)));
        assert_eq!(decode(&json, None).unwrap(), record);
    }
}
