//! How a [`TokenRecord`] is laid out in a row, both ways, for every backend.

use std::sync::Arc;

use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type, query::Query};
use uuid::Uuid;

use crate::{
    jwt::{JwtRevocations, MintedJwt, UserRevocation},
    record::TokenRecord,
    role::Roles,
    store::StoreError,
    time::Timestamp,
    token::{LastFour, TokenDigest},
    usage::LastUsed,
};

/// The token table's columns, in the order [`Columns::bind`] binds them.
pub(super) const COLUMNS: &str = "digest, id, organization, name, roles, created_at, created_by, \
                                  last_four, expires_at, last_used, users";

/// A record as the values of its row: texts and milliseconds, which every SQL database keeps.
pub(super) struct Columns {
    digest: String,
    id: String,
    organization: String,
    name: Option<String>,
    /// The roles as written, separated by spaces (a role never holds one).
    roles: String,
    created_at: i64,
    created_by: String,
    last_four: String,
    expires_at: Option<i64>,
    last_used: Option<i64>,
    /// The member ids of a narrowed token, as a JSON array.
    users: Option<String>,
}

impl Columns {
    pub(super) fn of(record: &TokenRecord) -> Result<Self, StoreError> {
        Ok(Self {
            digest: record.digest.to_hex(),
            id: record.id.hyphenated().to_string(),
            organization: record.organization.to_string(),
            name: record.name.clone(),
            roles: record.roles.to_strings().join(" "),
            created_at: millis(record.created_at)?,
            created_by: record.created_by.to_string(),
            last_four: record.last_four.as_str().to_owned(),
            expires_at: record.expires_at.map(millis).transpose()?,
            last_used: record.last_used.get().map(millis).transpose()?,
            users: record
                .users
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|error| StoreError::Encode(error.to_string()))?,
        })
    }

    /// Binds the values to `query`'s eleven parameters, in [`COLUMNS`] order.
    pub(super) fn bind<'q, DB: Database>(
        self,
        query: Query<'q, DB, DB::Arguments<'q>>,
    ) -> Query<'q, DB, DB::Arguments<'q>>
    where
        String: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
        Option<String>: Encode<'q, DB>,
        Option<i64>: Encode<'q, DB>,
    {
        query
            .bind(self.digest)
            .bind(self.id)
            .bind(self.organization)
            .bind(self.name)
            .bind(self.roles)
            .bind(self.created_at)
            .bind(self.created_by)
            .bind(self.last_four)
            .bind(self.expires_at)
            .bind(self.last_used)
            .bind(self.users)
    }
}

/// Reads a record back from a row holding [`COLUMNS`].
pub(super) fn record<'r, R: Row>(row: &'r R) -> Result<TokenRecord, StoreError>
where
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let text = |column: &'static str| row.try_get::<String, _>(column).map_err(decode);
    let maybe_text =
        |column: &'static str| row.try_get::<Option<String>, _>(column).map_err(decode);
    let time = |column: &'static str| {
        row.try_get::<Option<i64>, _>(column)
            .map_err(decode)?
            .map(timestamp)
            .transpose()
    };
    let digest = TokenDigest::from_hex(&text("digest")?).ok_or_else(|| unreadable("digest"))?;
    let id = Uuid::parse_str(&text("id")?).map_err(|_| unreadable("id"))?;
    let roles = text("roles")?;
    let roles = Roles::parse(&roles.split_whitespace().collect::<Vec<_>>())
        .map_err(|_| unreadable("roles"))?;
    let last_four = LastFour::new(&text("last_four")?).ok_or_else(|| unreadable("last_four"))?;
    Ok(TokenRecord {
        id,
        digest,
        organization: Arc::from(text("organization")?),
        name: maybe_text("name")?,
        roles,
        created_at: time("created_at")?.ok_or_else(|| unreadable("created_at"))?,
        created_by: Arc::from(text("created_by")?),
        last_four,
        expires_at: time("expires_at")?,
        last_used: LastUsed::new(time("last_used")?),
        users: maybe_text("users")?
            .map(|users| serde_json::from_str(&users).map_err(|_| unreadable("users")))
            .transpose()?,
    })
}

/// The JWT table's columns, in the order [`bind_jwt`] binds them.
pub(super) const JWT_COLUMNS: &str =
    "jti, organization, user_id, actor, reason, issued_at, expires_at";

/// Binds a minted JWT to `query`'s seven parameters, in [`JWT_COLUMNS`] order.
pub(super) fn bind_jwt<'q, DB: Database>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    jwt: &MintedJwt,
) -> Result<Query<'q, DB, DB::Arguments<'q>>, StoreError>
where
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    Ok(query
        .bind(jwt.jti.hyphenated().to_string())
        .bind(jwt.organization.to_string())
        .bind(jwt.user_id.to_string())
        .bind(jwt.actor.to_string())
        .bind(jwt.reason.clone())
        .bind(millis(jwt.issued_at)?)
        .bind(millis(jwt.expires_at)?))
}

/// Reads a minted JWT back from a row holding [`JWT_COLUMNS`].
pub(super) fn minted_jwt<'r, R: Row>(row: &'r R) -> Result<MintedJwt, StoreError>
where
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let text = |column: &'static str| row.try_get::<String, _>(column).map_err(decode);
    let time = |column: &'static str| timestamp(row.try_get::<i64, _>(column).map_err(decode)?);
    Ok(MintedJwt {
        jti: Uuid::parse_str(&text("jti")?).map_err(|_| unreadable("jti"))?,
        organization: Arc::from(text("organization")?),
        user_id: Arc::from(text("user_id")?),
        actor: Arc::from(text("actor")?),
        reason: text("reason")?,
        issued_at: time("issued_at")?,
        expires_at: time("expires_at")?,
    })
}

/// Reads the revocations in force from the rows of the revoked jtis and of the users'
/// revocations.
pub(super) fn jwt_revocations<'r, R: Row>(
    revoked_jtis: &'r [R],
    user_revocations: &'r [R],
) -> Result<JwtRevocations, StoreError>
where
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut revocations = JwtRevocations::new();
    for row in revoked_jtis {
        let jti = row.try_get::<String, _>("jti").map_err(decode)?;
        let jti = Uuid::parse_str(&jti).map_err(|_| unreadable("jti"))?;
        let expires_at = timestamp(row.try_get::<i64, _>("expires_at").map_err(decode)?)?;
        revocations.revoke_jti(jti, expires_at);
    }
    for row in user_revocations {
        let text = |column: &'static str| row.try_get::<String, _>(column).map_err(decode);
        let time = |column: &'static str| timestamp(row.try_get::<i64, _>(column).map_err(decode)?);
        revocations.revoke_user(UserRevocation {
            organization: Arc::from(text("organization")?),
            user_id: Arc::from(text("user_id")?),
            cutoff: time("cutoff")?,
            forget_at: time("forget_at")?,
        });
    }
    Ok(revocations)
}

/// A time as the milliseconds a row keeps.
pub(super) fn millis(at: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(at.as_millis())
        .map_err(|_| StoreError::Encode("a time is past the year 292 million".to_owned()))
}

fn timestamp(millis: i64) -> Result<Timestamp, StoreError> {
    u64::try_from(millis)
        .map(Timestamp::from_millis)
        .map_err(|_| StoreError::Decode("a stored time is before 1970".to_owned()))
}

fn decode(error: sqlx::Error) -> StoreError {
    StoreError::Decode(error.to_string())
}

fn unreadable(column: &str) -> StoreError {
    StoreError::Decode(format!("a stored token's {column} is unreadable"))
}
