//! The client a request comes from, as the log names it. Every line logged while a request is
//! served, audit lines and others, starts with `request{client=ADDRESS}: ` (in JSON, a span of
//! that name), as a `tracing` span would make it, without one: the request runs with its
//! client's address in a task-local ([`WithClientLayer`]), and the line writers read it
//! ([`RequestSpan`]). The crate's services finish a request's work as a task of its own, which
//! the task-local does not reach: their audit lines take the client from the request's
//! extensions instead, and their other lines, if any, name none. No span is made: a span per request, or an axum `from_fn` middleware to
//! make one, would cost every request, whether it logs a line or not.

use std::{
    fmt::Write,
    future::Future,
    net::{IpAddr, SocketAddr},
    task::{Context, Poll},
};

use axum::extract::ConnectInfo;
use http::{Extensions, Request};
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

use super::line_format::LineSpans;

tokio::task_local! {
    /// The address of the client whose request the task serves, if the server gave it.
    static CLIENT: Option<IpAddr>;
}

/// Serves each request with its client's address known to the log, taken from the
/// `ConnectInfo<SocketAddr>` of an app served with its connections' addresses. Put it outermost.
#[derive(Clone, Copy, Debug, Default)]
pub struct WithClientLayer;

impl<S> Layer<S> for WithClientLayer {
    type Service = WithClient<S>;

    fn layer(&self, inner: S) -> WithClient<S> {
        WithClient(inner)
    }
}

/// The service [`WithClientLayer`] makes: `S`, each call run with its request's client known.
#[derive(Clone, Debug)]
pub struct WithClient<S>(S);

impl<S, B> Service<Request<B>> for WithClient<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<Option<IpAddr>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let client = client_in(request.extensions());
        // The inner service may log in `call` itself (the impersonation layer decides there when
        // it can), not only while its future is polled.
        let future = CLIENT.sync_scope(client, || self.0.call(request));
        within(client, future)
    }
}

/// `future`, run as a request of `client`.
pub fn within<F: Future>(client: Option<IpAddr>, future: F) -> TaskLocalFuture<Option<IpAddr>, F> {
    CLIENT.scope(client, future)
}

/// The span a line is written in when its request's client is known: `request{client=…}`, as
/// a `tracing` span of that name and field would be written.
pub struct RequestSpan(Option<IpAddr>);

impl RequestSpan {
    /// The span of the request this task serves, if its client is known.
    pub fn current() -> Self {
        Self(CLIENT.try_with(|client| *client).ok().flatten())
    }

    /// This span, or where it knows no client, the client that `extensions` (a request's)
    /// name: the crate's services finish their work as tasks of their own, where the task's
    /// client is not known, but their audit events carry the request's extensions.
    pub fn or_client_in(self, extensions: &Extensions) -> Self {
        match self.0 {
            Some(_) => self,
            None => Self(client_in(extensions)),
        }
    }
}

/// The client's address that a request's extensions hold, from a server that gives its
/// connections' addresses (`ConnectInfo<SocketAddr>`).
fn client_in(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

impl LineSpans for RequestSpan {
    fn write_text(&self, line: &mut String) {
        if let Some(client) = self.0 {
            line.push_str("request{client=");
            push_address(line, client);
            line.push_str("}: ");
        }
    }

    fn write_json(&self, line: &mut String, first: &mut bool) {
        if let Some(client) = self.0 {
            if !std::mem::replace(first, false) {
                line.push(',');
            }
            line.push_str(r#"{"name":"request","client":""#);
            push_address(line, client);
            line.push_str(r#""}"#);
        }
    }
}

/// `address` as `Display` writes it. An IPv4 address's digits are placed by hand, as every
/// line logged while a request is served writes one and formatting is far slower.
fn push_address(line: &mut String, address: IpAddr) {
    let IpAddr::V4(v4) = address else {
        let _ = write!(line, "{address}");
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            line.push('.');
        }
        if octet >= 100 {
            line.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            line.push(char::from(b'0' + octet / 10 % 10));
        }
        line.push(char::from(b'0' + octet % 10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for address in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.100.9",
            "192.168.1.20",
            "255.255.255.255",
            "::1",
            "::ffff:127.0.0.1",
            "2001:db8::8a2e:370:7334",
        ] {
            let address: IpAddr = address.parse().unwrap();
            let mut line = String::new();
            push_address(&mut line, address);
            assert_eq!(line, address.to_string());
        }
    }
}
