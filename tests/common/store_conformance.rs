//! What every `TokenStore` does, written once and run unchanged against each backend by
//! `tests/it/stores.rs`.
//!
//! Each function takes any store and works in organizations of its own (fresh UUIDs), so the
//! functions can share one store, and stores can share one Redis.

use std::time::Duration;

use tower_impersonation::{
    Roles, Timestamp, TokenPrefix, TokenRecord, TokenSecret, TokenStore,
    jwt::{JwtIdentity, MintedJwt, UserRevocation},
    store::StoreError,
};
use uuid::Uuid;

use super::world::{ADA_ID, BOB_ID};

/// An organization no other test uses.
pub fn organization() -> String {
    format!("org-{}", Uuid::new_v4())
}

/// A new token of `organization`, full access.
pub fn issue(organization: &str) -> (TokenSecret, TokenRecord) {
    TokenRecord::issue(
        &TokenPrefix::default(),
        organization,
        ADA_ID,
        Roles::full_access(),
    )
}

pub async fn create_then_lookup<S: TokenStore>(store: &S) {
    let organization = organization();
    let (_, mut record) = issue(&organization);
    record.name = Some("CI token".to_owned());
    record.roles = Roles::parse(&["read:*", "write:cards"]).unwrap();
    store.create(record.clone(), usize::MAX).await.unwrap();

    let found = store.lookup(&record.digest).await.unwrap();
    assert_eq!(
        found.as_deref(),
        Some(&record),
        "the created token is found"
    );
    let again = store.lookup(&record.digest).await.unwrap();
    assert_eq!(again.as_deref(), Some(&record), "and found again, the same");

    let (never_stored, _) = issue(&organization);
    assert_eq!(store.lookup(&never_stored.digest()).await.unwrap(), None);
}

pub async fn a_narrowed_token_keeps_its_members<S: TokenStore>(store: &S) {
    let organization = organization();
    let (_, mut narrowed) = issue(&organization);
    narrowed.users = Some(["u-2", "u-7"].map(str::to_owned).into());
    store.create(narrowed.clone(), usize::MAX).await.unwrap();
    let (_, open) = issue(&organization);
    store.create(open.clone(), usize::MAX).await.unwrap();

    let found = store.lookup(&narrowed.digest).await.unwrap().unwrap();
    assert_eq!(
        found.users.as_deref(),
        Some(&["u-2".to_owned(), "u-7".to_owned()][..])
    );
    assert!(found.may_act_as("u-7") && !found.may_act_as("u-3"));
    let found = store.lookup(&open.digest).await.unwrap().unwrap();
    assert_eq!(found.users, None, "a token not narrowed may act as anyone");

    let listed = store.list(&organization).await.unwrap();
    let listed: Vec<TokenRecord> = listed.iter().map(|record| (**record).clone()).collect();
    assert!(listed.contains(&narrowed) && listed.contains(&open));
}

pub async fn list_shows_one_organization_oldest_first<S: TokenStore>(store: &S) {
    let (organization, other) = (organization(), organization());
    let start = Timestamp::now();
    let mut records = Vec::new();
    // Created out of order, listed by creation time.
    for seconds in [2, 0, 1] {
        let (_, mut record) = issue(&organization);
        record.created_at = start.plus(Duration::from_secs(seconds));
        store.create(record.clone(), usize::MAX).await.unwrap();
        records.push(record);
    }
    let (_, foreign) = issue(&other);
    store.create(foreign.clone(), usize::MAX).await.unwrap();

    records.sort_by_key(|record| record.created_at);
    let listed = store.list(&organization).await.unwrap();
    let listed: Vec<TokenRecord> = listed.iter().map(|record| (**record).clone()).collect();
    assert_eq!(listed, records);

    let others = store.list(&other).await.unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(*others[0], foreign);

    assert!(store.list(&self::organization()).await.unwrap().is_empty());
}

pub async fn revoke_by_another_organization_keeps_the_token<S: TokenStore>(store: &S) {
    let (organization, other) = (organization(), organization());
    let (_, record) = issue(&organization);
    store.create(record.clone(), usize::MAX).await.unwrap();

    assert!(!store.revoke(&other, record.id).await.unwrap());
    assert_eq!(
        store.lookup(&record.digest).await.unwrap().as_deref(),
        Some(&record)
    );
    let listed = store.list(&organization).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, record.id);
}

pub async fn revoke_removes_the_token<S: TokenStore>(store: &S) {
    let organization = organization();
    let (_, record) = issue(&organization);
    let (_, kept) = issue(&organization);
    store.create(record.clone(), usize::MAX).await.unwrap();
    store.create(kept.clone(), usize::MAX).await.unwrap();
    // Looked up first, so a cache in front of the store holds it.
    assert!(store.lookup(&record.digest).await.unwrap().is_some());

    assert!(store.revoke(&organization, record.id).await.unwrap());
    assert_eq!(store.lookup(&record.digest).await.unwrap(), None);
    let listed = store.list(&organization).await.unwrap();
    let ids: Vec<Uuid> = listed.iter().map(|record| record.id).collect();
    assert_eq!(ids, [kept.id]);

    assert!(!store.revoke(&organization, record.id).await.unwrap());
    assert!(!store.revoke(&organization, Uuid::new_v4()).await.unwrap());
    assert!(store.lookup(&kept.digest).await.unwrap().is_some());
}

pub async fn record_use_sets_last_used<S: TokenStore>(store: &S) {
    let organization = organization();
    let (_, record) = issue(&organization);
    store.create(record.clone(), usize::MAX).await.unwrap();
    let before = store.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(before.last_used.get(), None);

    let at = Timestamp::now();
    store.record_use(record.id, at).await.unwrap();
    let found = store.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(found.last_used.get(), Some(at));
    let listed = store.list(&organization).await.unwrap();
    assert_eq!(listed[0].last_used.get(), Some(at));

    // Never backwards.
    let earlier = Timestamp::from_millis(at.as_millis() - 60_000);
    store.record_use(record.id, earlier).await.unwrap();
    let found = store.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(found.last_used.get(), Some(at));

    // An unknown token is no error.
    store.record_use(Uuid::new_v4(), at).await.unwrap();
}

/// A token past its expiry is kept, found with its expiry and listed, until it is revoked: the
/// layer refuses it, and an admin sees it listed as expired rather than silently gone. It counts
/// against the organization's limit until then.
pub async fn expired_tokens_are_kept_and_listed_until_revoked<S: TokenStore>(store: &S) {
    let organization = organization();
    let now = Timestamp::now();
    let (_, mut expired) = issue(&organization);
    expired.expires_at = Some(Timestamp::from_millis(now.as_millis() - 1000));
    store.create(expired.clone(), usize::MAX).await.unwrap();
    let (_, mut valid) = issue(&organization);
    valid.created_at = expired.created_at.plus(Duration::from_millis(1));
    valid.expires_at = Some(now.plus(Duration::from_secs(3600)));
    store.create(valid.clone(), usize::MAX).await.unwrap();

    let found = store.lookup(&expired.digest).await.unwrap();
    assert_eq!(found.as_deref(), Some(&expired), "found, expiry and all");
    assert!(found.unwrap().is_expired(now));
    let found = store.lookup(&valid.digest).await.unwrap().unwrap();
    assert!(!found.is_expired(now));
    let listed = store.list(&organization).await.unwrap();
    let listed: Vec<TokenRecord> = listed.iter().map(|record| (**record).clone()).collect();
    assert_eq!(listed, [expired.clone(), valid.clone()]);

    let refused = store.create(issue(&organization).1, 2).await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached { limit: 2 })),
        "an expired token still counts: {refused:?}"
    );
    assert!(store.revoke(&organization, expired.id).await.unwrap());
    assert_eq!(store.lookup(&expired.digest).await.unwrap(), None);
    store.create(issue(&organization).1, 2).await.unwrap();
}

/// Creations racing each other never pass the limit: of twenty at once under a limit of five,
/// five are stored and fifteen refused; a revocation makes room for exactly one more, and each
/// organization has a count of its own.
pub async fn racing_creations_never_pass_the_limit<S: TokenStore + Clone>(store: &S) {
    const LIMIT: usize = 5;
    let organization = organization();
    let mut creations = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (store, (_, record)) = (store.clone(), issue(&organization));
        creations.spawn(async move { store.create(record, LIMIT).await });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(outcome) = creations.join_next().await {
        match outcome.unwrap() {
            Ok(()) => stored += 1,
            Err(StoreError::LimitReached { limit: LIMIT }) => refused += 1,
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!((stored, refused), (LIMIT, 15));
    let listed = store.list(&organization).await.unwrap();
    assert_eq!(listed.len(), LIMIT);

    assert!(store.revoke(&organization, listed[0].id).await.unwrap());
    store.create(issue(&organization).1, LIMIT).await.unwrap();
    let refused = store.create(issue(&organization).1, LIMIT).await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached { limit: LIMIT })),
        "{refused:?}"
    );
    assert_eq!(store.list(&organization).await.unwrap().len(), LIMIT);
    store
        .create(issue(&self::organization()).1, LIMIT)
        .await
        .unwrap();
}

// ---- Impersonation JWTs ----------------------------------------------------------------------

/// A JWT of `user` in `organization`, minted `ago` before now, valid for an hour from then.
pub fn minted(organization: &str, user: &str, ago: Duration) -> MintedJwt {
    let issued_at = Timestamp::from_millis(Timestamp::now().as_millis() - ago.as_millis() as u64);
    MintedJwt {
        jti: Uuid::new_v4(),
        organization: organization.into(),
        user_id: user.into(),
        actor: ADA_ID.into(),
        reason: "ticket 42".to_owned(),
        issued_at,
        expires_at: issued_at.plus(Duration::from_secs(3600)),
    }
}

/// What the store says of `jwt` now, waiting or not: revoked or not. An answer without waiting,
/// where the store gives one, must agree with the one it waits for.
async fn is_revoked<S: TokenStore>(store: &S, jwt: &JwtIdentity<'_>) -> bool {
    let revocations = store.jwt_revocations(Timestamp::now()).await.unwrap();
    let revoked = revocations.is_revoked(jwt);
    if let Some(now) = store.jwt_revoked_now(jwt) {
        assert_eq!(now, revoked, "the answer at hand disagrees with the store");
    }
    revoked
}

pub async fn minted_jwts_are_listed_while_live<S: TokenStore>(store: &S) {
    let (organization, other) = (organization(), organization());
    let older = minted(&organization, BOB_ID, Duration::from_secs(60));
    let newer = minted(&organization, "carol", Duration::from_secs(30));
    let mut expired = minted(&organization, BOB_ID, Duration::from_secs(7200));
    expired.expires_at = Timestamp::from_millis(Timestamp::now().as_millis() - 1000);
    let foreign = minted(&other, BOB_ID, Duration::from_secs(10));
    for jwt in [&newer, &expired, &older, &foreign] {
        store.record_jwt(jwt.clone()).await.unwrap();
    }
    let now = Timestamp::now();
    assert_eq!(
        store.list_jwts(&organization, now).await.unwrap(),
        [older, newer]
    );
    assert_eq!(store.list_jwts(&other, now).await.unwrap(), [foreign]);
    assert!(
        store
            .list_jwts(&self::organization(), now)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn revoking_a_jwt_ends_it_alone_and_needs_its_organization<S: TokenStore>(store: &S) {
    let (organization, other) = (organization(), organization());
    let revoked = minted(&organization, BOB_ID, Duration::from_secs(60));
    let kept = minted(&organization, BOB_ID, Duration::from_secs(30));
    store.record_jwt(revoked.clone()).await.unwrap();
    store.record_jwt(kept.clone()).await.unwrap();
    assert!(!is_revoked(store, &revoked.identity()).await);

    let now = Timestamp::now();
    assert!(
        !store.revoke_jwt(&other, revoked.jti, now).await.unwrap(),
        "another organization's"
    );
    assert!(
        !store
            .revoke_jwt(&organization, Uuid::new_v4(), now)
            .await
            .unwrap(),
        "unknown"
    );
    assert!(
        store
            .revoke_jwt(&organization, revoked.jti, now)
            .await
            .unwrap()
    );
    assert!(
        is_revoked(store, &revoked.identity()).await,
        "revoked at once"
    );
    assert!(
        !is_revoked(store, &kept.identity()).await,
        "the other one works"
    );
    assert!(
        !store
            .revoke_jwt(&organization, revoked.jti, now)
            .await
            .unwrap(),
        "twice"
    );
    assert_eq!(store.list_jwts(&organization, now).await.unwrap(), [kept]);
}

pub async fn an_earlier_user_revocation_arriving_late_spares_nothing<S: TokenStore>(store: &S) {
    let organization = organization();
    let bobs = minted(&organization, BOB_ID, Duration::from_secs(60));
    store.record_jwt(bobs.clone()).await.unwrap();
    let revocation = |cutoff: Timestamp| UserRevocation {
        organization: organization.as_str().into(),
        user_id: BOB_ID.into(),
        cutoff,
        forget_at: cutoff.plus(Duration::from_secs(3600)),
    };
    let later = bobs.issued_at.plus(Duration::from_secs(1));
    store.revoke_user_jwts(revocation(later)).await.unwrap();
    let earlier = Timestamp::from_millis(bobs.issued_at.as_millis() - 10_000);
    store.revoke_user_jwts(revocation(earlier)).await.unwrap();
    assert!(
        is_revoked(store, &bobs.identity()).await,
        "the later cutoff still ends the JWT"
    );
}

pub async fn revoking_a_users_jwts_ends_those_issued_before_and_spares_later_ones<S: TokenStore>(
    store: &S,
) {
    let organization = organization();
    let bobs = minted(&organization, BOB_ID, Duration::from_secs(60));
    let carols = minted(&organization, "carol", Duration::from_secs(60));
    store.record_jwt(bobs.clone()).await.unwrap();
    store.record_jwt(carols.clone()).await.unwrap();
    let cutoff = Timestamp::now();
    store
        .revoke_user_jwts(UserRevocation {
            organization: organization.as_str().into(),
            user_id: BOB_ID.into(),
            cutoff,
            forget_at: cutoff.plus(Duration::from_secs(3600)),
        })
        .await
        .unwrap();

    assert!(is_revoked(store, &bobs.identity()).await);
    let bare_form = JwtIdentity {
        jti: None,
        organization: None,
        user_id: BOB_ID,
        issued_at: bobs.issued_at,
    };
    assert!(
        is_revoked(store, &bare_form).await,
        "the bare form (`user_id` and `exp` only) too"
    );
    assert!(
        !is_revoked(store, &carols.identity()).await,
        "another user's"
    );
    let elsewhere = JwtIdentity {
        organization: Some("another organization"),
        ..bobs.identity()
    };
    assert!(
        !is_revoked(store, &elsewhere).await,
        "another organization's"
    );

    let mut later = minted(&organization, BOB_ID, Duration::ZERO);
    later.issued_at = cutoff.plus(Duration::from_secs(1));
    store.record_jwt(later.clone()).await.unwrap();
    assert!(
        !is_revoked(store, &later.identity()).await,
        "minted afterwards"
    );
    let now = Timestamp::now();
    assert_eq!(
        store.list_jwts(&organization, now).await.unwrap(),
        [carols, later]
    );
    assert!(
        !store
            .revoke_jwt(&organization, bobs.jti, now)
            .await
            .unwrap(),
        "not live"
    );
}

/// Revocations are kept only while the JWTs they end could still be used: the set is bounded.
pub async fn jwt_revocations_are_forgotten_once_their_jwts_have_expired<S: TokenStore>(store: &S) {
    let organization = organization();
    let jwt = minted(&organization, BOB_ID, Duration::from_secs(60));
    store.record_jwt(jwt.clone()).await.unwrap();
    let now = Timestamp::now();
    assert!(store.revoke_jwt(&organization, jwt.jti, now).await.unwrap());
    store
        .revoke_user_jwts(UserRevocation {
            organization: organization.as_str().into(),
            user_id: "dave".into(),
            cutoff: now,
            forget_at: now.plus(Duration::from_secs(3600)),
        })
        .await
        .unwrap();
    let revocations = store.jwt_revocations(now).await.unwrap();
    assert!(revocations.is_revoked(&jwt.identity()));

    let later = jwt.expires_at.plus(Duration::from_secs(3600));
    let revocations = store.jwt_revocations(later).await.unwrap();
    assert!(!revocations.is_revoked(&jwt.identity()));
    assert!(
        revocations.jtis().all(|(jti, _)| jti != jwt.jti),
        "the jti is forgotten"
    );
    assert!(
        revocations
            .users()
            .all(|revocation| *revocation.organization != *organization)
    );
}
