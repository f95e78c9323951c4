//! Ordinary requests, those without an impersonation credential, must not allocate in the layer.
//! Counted with a counting global allocator, per thread, so parallel tests do not interfere.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    convert::Infallible,
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use http::{Request, Response, header::AUTHORIZATION};
use http_body_util::Empty;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_impersonation::{
    ImpersonationLayer, MemoryStore, Roles, TokenPrefix, TokenRecord, TokenStore, jwt::JwtKeys,
};

use common::world::{ACME, ADA, ADA_ID, directory};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_during<T>(work: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let output = work();
    (ALLOCATIONS.with(Cell::get) - before, output)
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

/// The layer as an app would mount it, with JWTs accepted too, around a service that allocates
/// nothing itself.
fn layered(
    store: MemoryStore,
) -> impl Service<Request<()>, Response = Response<impl Sized>, Error = Infallible> {
    let keys = JwtKeys::hs256(b"a secret of thirty-two bytes!!!!").unwrap();
    let layer = ImpersonationLayer::builder(store, directory())
        .jwt(keys)
        .build();
    layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    }))
}

#[test]
fn ordinary_requests_do_not_allocate() {
    let mut service = layered(MemoryStore::new());
    for authorization in [
        Some("Bearer the-apps-own-key"),
        Some("Basic dXNlcjpwYXNz"),
        None,
    ] {
        let mut builder = Request::get("/api/v1/cards");
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        let request = builder.body(()).unwrap();
        let (count, response) = allocations_during(|| {
            block_on(async { service.ready().await.unwrap().call(request).await.unwrap() })
        });
        assert_eq!(response.status(), 200);
        assert_eq!(count, 0, "{authorization:?} allocated {count} times");
    }
}

#[test]
fn the_counter_sees_the_allocations_of_an_impersonated_request() {
    let store = MemoryStore::new();
    let (secret, record) =
        TokenRecord::issue(&TokenPrefix::default(), ACME, ADA_ID, Roles::full_access());
    block_on(store.create(record, usize::MAX)).unwrap();
    let mut service = layered(store);
    let request = Request::get("/api/v1/cards")
        .header(AUTHORIZATION, format!("Bearer {}:{ADA}", secret.expose()))
        .body(())
        .unwrap();
    let (count, response) = allocations_during(|| {
        block_on(async { service.ready().await.unwrap().call(request).await.unwrap() })
    });
    assert_eq!(response.status(), 200);
    assert!(
        count > 0,
        "inserting the ImpersonatedUser extension allocates"
    );
}
