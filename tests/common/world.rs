//! The one test world every suite shares: two organizations (Acme: Ada and Ann, its admins, and
//! Bob; Globex: Carol, its admin), and a store holding a token of every kind the tests need.

use tower_impersonation::{
    MemoryStore, Roles, StaticDirectory, Timestamp, TokenPrefix, TokenRecord, TokenStore,
};

pub const ACME: &str = "acme";
pub const GLOBEX: &str = "globex";
pub const ADA: &str = "ada@acme.test";
pub const ADA_ID: &str = "a-1";
pub const ANN_ID: &str = "a-2";
pub const BOB: &str = "bob@acme.test";
pub const BOB_ID: &str = "b-1";
/// Another address of Bob's.
pub const BOB_ALIAS: &str = "bob.relay@acme.test";
pub const CAROL_OF_GLOBEX: &str = "carol@globex.test";
pub const CAROL_ID: &str = "c-1";

/// Ada's standing in Acme, for the tests that take her role or her membership away.
#[derive(Clone, Copy)]
pub enum Ada {
    Admin,
    Member,
    Gone,
}

/// The world's directory as JSON, with Ada as `ada` says.
pub fn directory_json(ada: Ada) -> String {
    let ada = match ada {
        Ada::Admin => r#"{"id": "a-1", "email": "ada@acme.test", "name": "Ada", "admin": true},"#,
        Ada::Member => r#"{"id": "a-1", "email": "ada@acme.test", "name": "Ada", "admin": false},"#,
        Ada::Gone => "",
    };
    format!(
        r#"{{"organizations": [
            {{"id": "acme", "members": [
                {ada}
                {{"id": "a-2", "email": "ann@acme.test", "name": "Ann", "admin": true}},
                {{"id": "b-1", "email": "bob@acme.test", "name": "Bob", "aliases": ["bob.relay@acme.test"]}}
            ]}},
            {{"id": "globex", "members": [
                {{"id": "c-1", "email": "carol@globex.test", "name": "Carol", "admin": true}}
            ]}}
        ]}}"#
    )
}

/// The world's directory.
pub fn directory() -> StaticDirectory {
    StaticDirectory::from_json(&directory_json(Ada::Admin)).unwrap()
}

/// A store holding one token of each kind the tests need, and those tokens as clients send them.
pub struct Tokens {
    pub store: MemoryStore,
    pub full: String,
    /// The id of `full`, as audit events name it.
    pub full_id: uuid::Uuid,
    pub read_only: String,
    pub cards_only: String,
    pub revoked: String,
    pub expired: String,
}

pub async fn tokens() -> Tokens {
    let store = MemoryStore::new();
    let (full, full_id) = issue(&store, &["*:*"], None).await;
    let read_only = issue(&store, &["read:*"], None).await.0;
    let cards_only = issue(&store, &["read:cards"], None).await.0;
    let (revoked, id) = issue(&store, &["*:*"], None).await;
    assert!(store.revoke(ACME, id).await.unwrap());
    let an_hour_ago = Timestamp::from_millis(Timestamp::now().as_millis() - 3_600_000);
    let expired = issue(&store, &["*:*"], Some(an_hour_ago)).await.0;
    Tokens {
        store,
        full,
        full_id,
        read_only,
        cards_only,
        revoked,
        expired,
    }
}

async fn issue(
    store: &MemoryStore,
    roles: &[&str],
    expires_at: Option<Timestamp>,
) -> (String, uuid::Uuid) {
    let roles = Roles::parse(roles).unwrap();
    let (secret, mut record) = TokenRecord::issue(&TokenPrefix::default(), ACME, ADA_ID, roles);
    record.expires_at = expires_at;
    let id = record.id;
    store.create(record, usize::MAX).await.unwrap();
    (secret.expose(), id)
}
