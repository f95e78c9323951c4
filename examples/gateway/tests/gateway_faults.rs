//! The example gateway against what a deployment throws at it, on the real binary: hundreds of
//! clients that stall, from the address a valid client uses too, and logrotate's rename and SIGHUP.
#![cfg(unix)]

mod gateway_process;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use http::{Method, StatusCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinSet,
};

use gateway_process::Gateway;

/// The head and body timeouts the stalling test sets, in seconds.
const TIMEOUT: u64 = 5;
/// The HTTP/2 idle timeout it sets: a silent connection is pinged after it, and closed when the
/// ping is not answered within it again.
const IDLE_TIMEOUT: u64 = 3;
/// How long past its timeout a stalled connection may take to be closed, on a busy machine.
const GRACE: Duration = Duration::from_secs(20);
/// How long the log test waits for a line to reach its file, on a busy machine.
const LOG_WAIT: Duration = Duration::from_secs(30);

const STALLED: usize = 800;

/// The ways a client stalls.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// Connects and sends nothing.
    Silent,
    /// Sends half a request head.
    HalfHead,
    /// Sends the first part of HTTP/2's connection preface.
    HalfPreface,
    /// Sends a request whose body stops after 1,000 of the 1,000,000 bytes it declared.
    HalfBody,
    /// Sends a request, reads the answer, and sends nothing more on the kept-alive connection.
    IdleKeepAlive,
    /// Speaks HTTP/2: sends one request, then neither reads nor answers the gateway's pings.
    SilentHttp2,
}

const STALLS: [Stall; 6] = [
    Stall::Silent,
    Stall::HalfHead,
    Stall::HalfPreface,
    Stall::HalfBody,
    Stall::IdleKeepAlive,
    Stall::SilentHttp2,
];

/// HTTP/2's connection preface, an empty SETTINGS frame, and a HEADERS frame that ends its
/// stream: `GET /healthz` on stream 1 (HPACK: `:method GET`, `:scheme http`, `:path` from the
/// static table's name with a literal value).
const HTTP2_GET_HEALTHZ: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\
    \x00\x00\x00\x04\x00\x00\x00\x00\x00\
    \x00\x00\x0c\x01\x05\x00\x00\x00\x01\x82\x86\x44\x08/healthz";

impl Stall {
    /// The longest the gateway should keep it open once it stalled.
    fn timeout(self) -> Duration {
        match self {
            Stall::SilentHttp2 => Duration::from_secs(2 * IDLE_TIMEOUT),
            _ => Duration::from_secs(TIMEOUT),
        }
    }

    /// Opens a connection to `gateway` and stalls it this way.
    async fn open(self, gateway: &Gateway) -> TcpStream {
        let mut stream = TcpStream::connect(gateway.addr()).await.unwrap();
        let host = gateway.addr();
        match self {
            Stall::Silent => {}
            Stall::HalfHead => {
                let head = format!("GET /api/v1/whoami HTTP/1.1\r\nhost: {host}\r\nauthoriz");
                stream.write_all(head.as_bytes()).await.unwrap();
            }
            Stall::HalfPreface => stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(),
            Stall::HalfBody => {
                let head = format!(
                    "POST /api/v1/cards HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer \
                     demo-bob-key\r\ncontent-type: application/json\r\ncontent-length: \
                     1000000\r\n\r\n{{\"title\": \""
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(&[b'a'; 1000]).await.unwrap();
            }
            Stall::IdleKeepAlive => {
                let request = format!("GET /healthz HTTP/1.1\r\nhost: {host}\r\n\r\n");
                stream.write_all(request.as_bytes()).await.unwrap();
                let answer = read_some(&mut stream).await;
                assert!(answer.starts_with(b"HTTP/1.1 200 OK"), "{answer:?}");
            }
            Stall::SilentHttp2 => stream.write_all(HTTP2_GET_HEALTHZ).await.unwrap(),
        }
        stream
    }
}

/// A connection stalled one way, with when it was opened and when it stalled.
struct Stalled {
    stall: Stall,
    stream: TcpStream,
    /// Just before it was opened: its timeout cannot have run out before this plus its length.
    opened_at: Instant,
    /// Once it stalled.
    stalled_at: Instant,
}

impl Stalled {
    /// Whether the gateway closed it although its timeout had not run out.
    fn closed_early(&self) -> bool {
        !still_open(&self.stream) && self.opened_at.elapsed() < self.stall.timeout()
    }
}

/// Reads what has come, waiting for at least one byte.
async fn read_some(stream: &mut TcpStream) -> Vec<u8> {
    let mut buffer = vec![0; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    buffer.truncate(read);
    buffer
}

/// Whether the gateway has not closed `stream`, reading (and forgetting) what it sent so far.
fn still_open(stream: &TcpStream) -> bool {
    let mut buffer = [0; 4096];
    loop {
        match stream.try_read(&mut buffer) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn stalled_clients_are_cut_off_and_a_valid_client_is_answered_meanwhile() {
    let timeout = TIMEOUT.to_string();
    let idle_timeout = IDLE_TIMEOUT.to_string();
    let gateway = Gateway::start_with(&[
        "--quiet",
        "--store",
        "memory",
        "--header-timeout",
        &timeout,
        "--body-timeout",
        &timeout,
        "--idle-timeout",
        &idle_timeout,
    ])
    .await;

    let mut stalled = Vec::with_capacity(STALLED);
    for stall in STALLS.into_iter().cycle().take(STALLED) {
        let opened_at = Instant::now();
        let stream = stall.open(&gateway).await;
        stalled.push(Stalled {
            stall,
            stream,
            opened_at,
            stalled_at: Instant::now(),
        });
    }

    // A valid request from the same address, on a new connection (a client of its own, not the
    // connection kept alive since the start, which the gateway may close as it is reused), while
    // they stall: answered before the newest stalled connection's timeout can have run out.
    let newest = stalled.last().unwrap();
    let client = gateway_process::Client::new(&gateway.base);
    let answered = tokio::time::timeout_at(
        (newest.opened_at + newest.stall.timeout()).into(),
        client.try_send(Method::GET, "/api/v1/whoami", "Bearer demo-bob-key", ""),
    )
    .await
    .expect("no answer while the stalled connections are open");
    let (status, whoami) = answered.unwrap();
    assert_eq!(status, StatusCode::OK, "{whoami}");
    assert_eq!(whoami["email"], "bob@example.com");
    // Each is still open, unless its timeout ran out while the others were being opened (on a
    // busy machine opening them all may take longer than a timeout).
    let closed_early: Vec<_> = stalled
        .iter()
        .filter(|stalled| stalled.closed_early())
        .map(|stalled| stalled.stall)
        .collect();
    assert!(
        closed_early.is_empty(),
        "closed before the valid request was answered: {closed_early:?}"
    );

    // Then each stalled connection is closed within its timeout.
    let mut closing = JoinSet::new();
    for Stalled {
        stall,
        mut stream,
        stalled_at,
        ..
    } in stalled
    {
        closing.spawn(async move {
            let by = stalled_at + stall.timeout() + GRACE;
            let mut rest = Vec::new();
            let closed = tokio::time::timeout_at(by.into(), stream.read_to_end(&mut rest)).await;
            (stall, closed.is_ok(), stalled_at.elapsed())
        });
    }
    let mut still_held = Vec::new();
    while let Some(outcome) = closing.join_next().await {
        let (stall, closed, after) = outcome.unwrap();
        if !closed {
            still_held.push((stall, after));
        }
    }
    assert!(
        still_held.is_empty(),
        "{} of {STALLED} stalled connections still open past their timeout: {:?}",
        still_held.len(),
        &still_held[..still_held.len().min(10)]
    );
    // A new connection again: the valid client's has been idle for about a timeout.
    let client = gateway_process::Client::new(&gateway.base);
    let (status, _) = client.send(Method::GET, "/healthz", "", "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_waits_until_a_stalled_one_is_cut_off() {
    let timeout = TIMEOUT.to_string();
    let gateway = Gateway::start_with(&[
        "--quiet",
        "--store",
        "memory",
        "--header-timeout",
        &timeout,
        "--max-connections",
        "4",
    ])
    .await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(Stall::Silent.open(&gateway).await);
    }

    // A client of its own, so no connection kept alive from the start is reused.
    let client = gateway_process::Client::new(&gateway.base);
    let answered = tokio::time::timeout(
        Duration::from_secs(TIMEOUT) + GRACE,
        client.try_send(Method::GET, "/healthz", "", ""),
    )
    .await
    .expect("no answer once the stalled connections were cut off");
    assert_eq!(answered.unwrap().0, StatusCode::OK);
    assert!(
        stalled.iter().any(|stream| !still_open(stream)),
        "answered while all four stalled connections held the cap"
    );
}

/// A connection to `gateway` from the loopback address `from` (any of 127.0.0.0/8 reaches it),
/// which sends nothing.
async fn connect_from(gateway: &Gateway, from: [u8; 4]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(gateway.addr()).await.unwrap()
}

#[tokio::test]
async fn one_client_address_holds_at_most_its_share_of_connections() {
    let gateway = Gateway::start_with(&[
        "--quiet",
        "--store",
        "memory",
        "--max-connections-per-client",
        "3",
    ])
    .await;
    // From an address of its own: the test's client keeps a connection from 127.0.0.1.
    const CLIENT: [u8; 4] = [127, 0, 0, 3];
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&gateway, CLIENT).await);
    }
    let past_its_share = connect_from(&gateway, CLIENT).await;
    wait_until("the client's fourth connection is closed", || {
        !still_open(&past_its_share)
    })
    .await;
    assert!(held.iter().all(still_open), "the first three stay open");

    // Another address is served meanwhile.
    let mut other = connect_from(&gateway, [127, 0, 0, 2]).await;
    let request = format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", gateway.addr());
    other.write_all(request.as_bytes()).await.unwrap();
    let answer = read_some(&mut other).await;
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"), "{answer:?}");

    // One of the client's connections closes, and its place is free again.
    drop(held.pop());
    let started = Instant::now();
    loop {
        let replacement = connect_from(&gateway, CLIENT).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if still_open(&replacement) {
            break;
        }
        assert!(
            started.elapsed() < LOG_WAIT,
            "the client is not served again after one of its connections closed"
        );
    }
}

/// The accepted impersonated `whoami` requests the log at `path` holds (none if it is absent).
fn whoami_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            line.contains(r#"outcome="accepted""#) && line.contains(r#"path="/api/v1/whoami""#)
        })
        .count()
}

/// Waits until `done` holds, for at most [`LOG_WAIT`].
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < LOG_WAIT,
            "not within {LOG_WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sighup_reopens_the_audit_log_and_no_line_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.log");
    let rotated = dir.path().join("gateway.log.1");
    let mut gateway =
        Gateway::start_with(&["--store", "memory", "--audit-log", log.to_str().unwrap()]).await;
    let (token, _) = gateway.create_ok().await;
    let mut sent = 0;
    for _ in 0..20 {
        assert_eq!(gateway.as_bob(&token).await, StatusCode::OK);
        sent += 1;
    }
    wait_until("the first lines are written", || whoami_lines(&log) == 20).await;

    // What logrotate does: rename the file, then SIGHUP.
    std::fs::rename(&log, &rotated).unwrap();
    gateway.hang_up();
    let started = Instant::now();
    while whoami_lines(&log) == 0 {
        assert!(
            started.elapsed() < LOG_WAIT,
            "no line in a new log file {LOG_WAIT:?} after SIGHUP"
        );
        assert_eq!(gateway.as_bob(&token).await, StatusCode::OK);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..20 {
        assert_eq!(gateway.as_bob(&token).await, StatusCode::OK);
        sent += 1;
    }

    wait_until("every line is in one file or the other", || {
        whoami_lines(&rotated) + whoami_lines(&log) >= sent
    })
    .await;
    assert_eq!(
        whoami_lines(&rotated) + whoami_lines(&log),
        sent,
        "each request's line is written once"
    );
    assert!(
        whoami_lines(&rotated) >= 20,
        "the renamed file keeps the lines"
    );
    assert!(whoami_lines(&log) >= 21, "the new file gets the new lines");
    // Logged on the signal's thread, whose lines may reach the file a pass after the requests'.
    wait_until("the new file says it was reopened", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("SIGHUP: reopened the log file")
    })
    .await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the new log is its owner's alone");
    }

    assert!(gateway.is_running(), "SIGHUP ended the gateway");
    let (status, _) = gateway.send(Method::GET, "/healthz", "", "").await;
    assert_eq!(status, StatusCode::OK);
}
