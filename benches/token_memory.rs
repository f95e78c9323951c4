//! Measures the memory a `MemoryStore` uses per token: the process's resident size before and after
//! storing 1,000,000 tokens.
//!
//! `cargo bench --bench token_memory [-- COUNT]`

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use tower_impersonation::{MemoryStore, Roles, TokenPrefix, TokenRecord, TokenStore};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn main() {
    // `cargo bench` adds `--bench` to the arguments: the count is the first that is a number.
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(1_000_000);
    let prefix = TokenPrefix::default();
    let roles = Roles::full_access();
    let store = MemoryStore::new();
    // Ten organizations and their admins, shared as the token service shares its caller's ids.
    let organizations: Vec<Arc<str>> = (0..10).map(|i| format!("org-{i}").into()).collect();
    let admins: Vec<Arc<str>> = (0..10).map(|i| format!("admin-{i}").into()).collect();
    let before = resident_bytes();
    for i in 0..count {
        let (organization, admin) = (
            Arc::clone(&organizations[i % 10]),
            Arc::clone(&admins[i % 10]),
        );
        let (_, mut record) = TokenRecord::issue(&prefix, organization, admin, roles.clone());
        if i % 10 == 0 {
            record.name = Some(format!("integration {i}"));
        }
        block_on(store.create(record, usize::MAX)).expect("memory store accepts every token");
    }
    let after = resident_bytes();
    let per_token = (after - before) as f64 / count as f64;
    println!("tokens: {count}");
    println!(
        "resident before: {:.1} MiB, after: {:.1} MiB",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    println!("bytes per token: {per_token:.0}");
    assert_eq!(store.len(), count);
}
