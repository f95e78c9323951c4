//! A PostgreSQL server of a test's own, in a temporary folder on a loopback port, that the test
//! may stop and start again: Debian's `initdb` and `pg_ctl`, from `PG_BIN` (as `.ci/run` exports
//! it) or `/usr/lib/postgresql/*/bin`. As root, the server runs as the `postgres` user, since
//! Postgres refuses to run as root.
#![allow(dead_code, reason = "each test binary uses part of it")]

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use tempfile::TempDir;

pub struct PostgresServer {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    as_postgres: bool,
}

/// Where `initdb` and `pg_ctl` are, if anywhere.
fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    let id = Command::new("id").arg("-u").output().expect("`id -u` runs");
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

impl PostgresServer {
    /// Initialises a cluster and starts it on `port`; `None` when Postgres is not installed.
    pub fn start(port: u16) -> Option<Self> {
        let bin = binaries()?;
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let chown = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                chown.success(),
                "could not give the cluster's folder to postgres"
            );
        }
        let server = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        server.start_again();
        Some(server)
    }

    /// `postgres://` URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server, ending every connection (`pg_ctl stop -m fast`).
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the stopped server again, on the same port.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}
