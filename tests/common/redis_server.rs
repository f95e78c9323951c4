//! A `redis-server` of a test's own, on a free loopback port with a temporary folder as its
//! working directory, that the test may stop, start again, freeze and reconfigure without
//! disturbing any other test.

use std::{
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

use super::servers::free_port;

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    options: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server` keeping nothing on disk; `None` when the binary is not on `PATH`.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Starts `redis-server` with `options` (such as `["--save", "3600 1"]`) after the defaults
    /// (no snapshots, no append-only file); `None` when the binary is not on `PATH`.
    pub fn start_with(options: &[&str]) -> Option<Self> {
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            options: options.iter().map(|option| (*option).to_owned()).collect(),
        };
        server.spawn().then_some(server)
    }

    /// Starts `redis-server` with `options` for `test`, which needs it (such tests are ignored
    /// unless asked for): panics when the binary is not on `PATH`.
    pub fn start_for(options: &[&str], test: &str) -> Self {
        Self::start_with(options)
            .unwrap_or_else(|| panic!("redis-server is not on PATH: {test} needs it"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory, where it saves its snapshots.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server: it keeps nothing, and every connection to it drops.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again, on the same port, with the same options.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is stopped");
        assert!(self.spawn(), "redis-server vanished from PATH");
    }

    /// Sends `SIGSTOP` or `SIGCONT` to the server: a Redis that hangs instead of going away.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts the process and waits until it listens; `false` when the binary is not on `PATH`.
    fn spawn(&mut self) -> bool {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.child = match spawned {
            Ok(child) => Some(child),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return false,
            Err(error) => panic!("could not start redis-server: {error}"),
        };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "redis-server did not listen on port {} within 5 s",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
