//! The log file: appended to, created readable by its owner only, and opened anew at its path on
//! request, as logrotate expects of a program it sends SIGHUP after renaming the program's log.

use std::{
    fs::{File, OpenOptions},
    io,
    path::{Path, PathBuf},
};

use super::Lines;

/// The log file, appended to; one it creates is readable by its owner only, as the token
/// database is: who impersonated whom, from where, is nobody else's business.
pub fn open_for_appending(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The file a running log writes to, by its path: what reopens it after a rotation.
#[derive(Clone)]
pub struct LogFile {
    path: PathBuf,
    lines: Lines,
}

impl LogFile {
    /// The file at `path`, which the log of `lines` writes to.
    pub fn new(path: &Path, lines: Lines) -> Self {
        Self {
            path: path.to_owned(),
            lines,
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file at the log's path (created if it is gone, as after a rename) and has every
    /// line logged from now on written there; the lines logged before are written to the file the
    /// log had, which is then closed. On an error the log goes on in the file it had.
    pub fn reopen(&self) -> io::Result<()> {
        let file = open_for_appending(&self.path)?;
        self.lines.switch_to(file);
        Ok(())
    }
}
