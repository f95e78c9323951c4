//! The example gateway's graceful shutdown, on the real binary: SIGTERM while a request is in
//! flight stops new connections, still answers that request, writes its audit event to the log
//! file, and exits 0; with `--redis` (when `REDIS_URL` names a server), the last use of a token
//! that only the instance's cache held reaches Redis before the exit.
#![cfg(unix)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

const ADMIN_KEY: &str = "demo-admin-key";
const BOB: &str = "bob@example.com";

/// `target/<profile>/examples/gateway`, which `cargo test` builds beside this test. Run alone
/// (`cargo test --test gateway_shutdown`), cargo builds only the test: build the example first
/// (`cargo build --example gateway --all-features`) or the binary may be an older one.
fn gateway_binary() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile_dir = test.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join("gateway");
    assert!(
        binary.exists(),
        "{} is missing: run through cargo test, which builds the examples",
        binary.display()
    );
    binary
}

/// The gateway as a child process, killed if the test fails before it exits. It runs in a
/// temporary folder of its own, where its default token file and JWT key go.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    workdir: tempfile::TempDir,
}

impl Gateway {
    fn start(audit_log: &std::path::Path) -> Self {
        Self::start_with(&["--audit-log".as_ref(), audit_log.as_os_str()])
    }

    fn start_with(args: &[&std::ffi::OsStr]) -> Self {
        let workdir = tempfile::tempdir().unwrap();
        let mut child = Command::new(gateway_binary())
            .current_dir(workdir.path())
            .args(["--addr", "127.0.0.1:0", "--rate-limit", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The first line naming an address: "tower-impersonation example gateway on http://…".
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        while !first.contains("http://") {
            first.clear();
            assert_ne!(
                stdout.read_line(&mut first).unwrap(),
                0,
                "the gateway did not start"
            );
        }
        let addr = first
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        // Keep reading the banner so the gateway never blocks on a full pipe.
        thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self {
            child,
            addr,
            workdir,
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits until the gateway refuses new connections, as it does once it has taken the signal.
    fn wait_until_closed_to_new_connections(&self) {
        for _ in 0..500 {
            if TcpStream::connect(self.addr).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("the gateway still accepts connections five seconds after SIGTERM");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `head` and reads one response (up to its `Content-Length`) from `stream`.
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    authorization: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {authorization}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut stream)
}

/// The `"field":"value"` of a JSON body, enough for the token the service returns.
fn json_string(body: &str, field: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value[field].as_str().unwrap().to_owned()
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_then_exits_zero() {
    let audit_log =
        std::env::temp_dir().join(format!("gateway-shutdown-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&audit_log);
    let mut gateway = Gateway::start(&audit_log);

    let (status, created) = request(
        gateway.addr,
        "POST",
        "/api/v1/api-tokens/impersonation",
        ADMIN_KEY,
        r#"{"name": "shutdown test"}"#,
    );
    assert_eq!(status, 200, "{created}");
    let token = json_string(&created, "token");

    // A card created as Bob, its body held back: the gateway answers `100 Continue` only once the
    // handler reads the body, so the request is in the handler when the signal comes.
    let body = r#"{"title": "written during shutdown"}"#;
    let mut in_flight = TcpStream::connect(gateway.addr).unwrap();
    write!(
        in_flight,
        "POST /api/v1/cards HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}:{BOB}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        gateway.addr,
        body.len()
    )
    .unwrap();
    let mut interim = [0; 25];
    in_flight.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");

    gateway.terminate();
    gateway.wait_until_closed_to_new_connections();
    in_flight.write_all(body.as_bytes()).unwrap();
    let (status, answer) = read_response(&mut in_flight);
    assert_eq!(status, 201, "{answer}");
    assert!(answer.contains("written during shutdown"), "{answer}");

    let exit = gateway.child.wait().unwrap();
    assert!(exit.success(), "the gateway exited with {exit}");
    let mut files: Vec<String> = std::fs::read_dir(gateway.workdir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["impersonation.db", "impersonation.jwt-key"],
        "a clean exit folds SQLite's write-ahead log into the database file"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&audit_log).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the audit log is its owner's alone");
    }
    let log = std::fs::read_to_string(&audit_log).unwrap();
    let _ = std::fs::remove_file(&audit_log);
    let event = log
        .lines()
        .find(|line| {
            line.contains("outcome=\"accepted\"") && line.contains("path=\"/api/v1/cards\"")
        })
        .unwrap_or_else(|| panic!("the in-flight request's audit event is not in the log:\n{log}"));
    assert!(event.contains(r#"method="POST""#), "{event}");
    assert!(
        event.contains("  INFO request{client=127.0.0.1}: tower_impersonation::audit: "),
        "the line names the client's address: {event}"
    );
    assert!(!log.contains(&token), "the token never reaches the log");
}

fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but REDIS_URL is not: the Redis tests must run in CI")
        }
        _ => {
            eprintln!("REDIS_URL not set: skipping the Redis shutdown test");
            None
        }
    }
}

/// The `lastUsed` of token `id` in a listing of the organization's tokens, read from Redis
/// through `gateway`.
fn last_used(gateway: &Gateway, id: &str) -> Option<String> {
    let (status, listing) = request(
        gateway.addr,
        "GET",
        "/api/v1/api-tokens/impersonation",
        ADMIN_KEY,
        "",
    );
    assert_eq!(status, 200, "{listing}");
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let tokens = listing.as_array().unwrap_or_else(|| panic!("{listing}"));
    let token = tokens.iter().find(|token| token["id"] == id).unwrap();
    token["lastUsed"].as_str().map(str::to_owned)
}

#[test]
fn sigterm_writes_back_to_redis_the_last_use_held_in_memory() {
    let Some(url) = redis_url() else { return };
    let redis: &[&std::ffi::OsStr] = &["--quiet".as_ref(), "--redis".as_ref(), url.as_ref()];
    let mut serving = Gateway::start_with(redis);
    let reading = Gateway::start_with(redis);

    let (status, created) = request(
        serving.addr,
        "POST",
        "/api/v1/api-tokens/impersonation",
        ADMIN_KEY,
        r#"{"name": "shutdown flush test"}"#,
    );
    assert_eq!(status, 200, "{created}");
    let token = json_string(&created, "token");
    let id = json_string(&created, "id");
    let whoami = || {
        let (status, answer) = request(
            serving.addr,
            "GET",
            "/api/v1/whoami",
            &format!("{token}:{BOB}"),
            "",
        );
        assert_eq!(status, 200, "{answer}");
    };

    // The first uses are written through (the first on the record read from Redis, the second
    // on the copy the cache keeps); later ones within the minute are only noted in the serving
    // instance's cache, so Redis still says what it said.
    whoami();
    whoami();
    let written = last_used(&reading, &id).expect("the first uses are written at once");
    // Last uses are kept to the second: the next one must come more than a second later.
    thread::sleep(Duration::from_millis(1100));
    whoami();
    assert_eq!(last_used(&reading, &id).as_ref(), Some(&written));

    serving.terminate();
    let exit = serving.child.wait().unwrap();
    assert!(exit.success(), "the gateway exited with {exit}");
    let flushed = last_used(&reading, &id).unwrap();
    assert!(
        flushed > written,
        "lastUsed {flushed} is not later than {written}"
    );

    let (status, _) = request(
        reading.addr,
        "DELETE",
        &format!("/api/v1/api-tokens/impersonation/{id}"),
        ADMIN_KEY,
        "",
    );
    assert_eq!(status, 204);
}
