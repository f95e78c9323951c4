//! A [`RedisStore`]'s JWT operations: record, list and revoke minted JWTs, and read the
//! revocations in force.

use uuid::Uuid;

use super::RedisStore;
use crate::{
    jwt::{JwtRevocations, MintedJwt, UserRevocation},
    store::StoreError,
    time::Timestamp,
};

impl RedisStore {
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

    pub(super) async fn insert_jwt(&self, jwt: MintedJwt) -> Result<(), StoreError> {
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

    pub(super) async fn collect_jwts(
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

    pub(super) async fn revoke_one_jwt(
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

    pub(super) async fn revoke_all_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> Result<(), StoreError> {
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

    pub(super) async fn read_jwt_revocations(
        &self,
        now: Timestamp,
    ) -> Result<JwtRevocations, StoreError> {
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
