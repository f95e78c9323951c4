//! The example gateway's graceful shutdown, on the real binary: SIGTERM while a request is in
//! flight stops new connections, still answers that request, writes its audit event to the log
//! file, and exits 0; with `--redis` (when `REDIS_URL` names a server), the last use of a token
//! that only the instance's cache held reaches Redis before the exit.
#![cfg(unix)]

mod gateway_process;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::Duration,
};

use http::StatusCode;

use gateway_process::{BOB, Gateway};

/// Reads one response (up to its `Content-Length`) from `stream`.
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

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish_then_exits_zero() {
    let audit_log =
        std::env::temp_dir().join(format!("gateway-shutdown-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&audit_log);
    let mut gateway = Gateway::start_with(&["--audit-log", audit_log.to_str().unwrap()]).await;
    let (token, _) = gateway.create_ok().await;

    // A card created as Bob, its body held back: the gateway answers `100 Continue` only once the
    // handler reads the body, so the request is in the handler when the signal comes.
    let body = r#"{"title": "written during shutdown"}"#;
    let mut in_flight = TcpStream::connect(gateway.addr()).unwrap();
    write!(
        in_flight,
        "POST /api/v1/cards HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}:{BOB}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        gateway.addr(),
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

    let exit = gateway.wait();
    assert!(exit.success(), "the gateway exited with {exit}");
    let mut files: Vec<String> = std::fs::read_dir(gateway.workdir())
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

fn redis_url() -> String {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("REDIS_URL is not set: this test needs the Redis it names"),
    }
}

/// The `lastUsed` of token `id` in a listing of the organization's tokens, read from Redis
/// through `gateway`.
async fn last_used(gateway: &Gateway, id: &str) -> Option<String> {
    let tokens = gateway.listed().await;
    let token = tokens.iter().find(|token| token["id"] == id).unwrap();
    token["lastUsed"].as_str().map(str::to_owned)
}

#[tokio::test]
#[ignore = "needs REDIS_URL (.ci/run runs it)"]
async fn sigterm_writes_back_to_redis_the_last_use_held_in_memory() {
    let url = redis_url();
    let redis = ["--quiet", "--redis", &url];
    let mut serving = Gateway::start_with(&redis).await;
    let reading = Gateway::start_with(&redis).await;
    let (token, id) = serving.create_ok().await;

    // The first uses are written through (the first on the record read from Redis, the second
    // on the copy the cache keeps); later ones within the minute are only noted in the serving
    // instance's cache, so Redis still says what it said.
    assert_eq!(serving.as_bob(&token).await, StatusCode::OK);
    assert_eq!(serving.as_bob(&token).await, StatusCode::OK);
    let written = last_used(&reading, &id)
        .await
        .expect("the first uses are written at once");
    // Last uses are kept to the second: the next one must come more than a second later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(serving.as_bob(&token).await, StatusCode::OK);
    assert_eq!(last_used(&reading, &id).await.as_ref(), Some(&written));

    serving.terminate();
    let exit = serving.wait();
    assert!(exit.success(), "the gateway exited with {exit}");
    let flushed = last_used(&reading, &id).await.unwrap();
    assert!(
        flushed > written,
        "lastUsed {flushed} is not later than {written}"
    );
    assert_eq!(reading.revoke(&id).await, StatusCode::NO_CONTENT);
}
