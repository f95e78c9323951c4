//! The process's limit on open files, which bounds the connections the gateway can hold: raised at
//! start as far as `--max-connections` needs and the hard limit allows.

/// Files the gateway keeps open besides its connections: the standard streams, the listener, the
/// log file, the store's (SQLite's files, Postgres and Redis connections) and the runtime's own.
const RESERVED: u64 = 256;

/// Raises the soft limit on open files to what `connections` connections need, as far as the hard
/// limit allows, and returns how many connections fit under the limit then: `connections`, or
/// fewer if the limit stays lower.
#[cfg(unix)]
pub fn make_room_for(connections: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};

    let wanted = u64::try_from(connections).map_or(u64::MAX, |n| n.saturating_add(RESERVED));
    let mut limit = getrlimit(Resource::Nofile);
    let Some(soft) = limit.current else {
        return connections; // no limit
    };
    let mut open_files = soft;
    if soft < wanted {
        let raised = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
        limit.current = Some(raised);
        if raised > soft && setrlimit(Resource::Nofile, limit).is_ok() {
            open_files = raised;
        }
    }
    let room = open_files - RESERVED.min(open_files / 2);
    usize::try_from(room).map_or(connections, |room| room.min(connections))
}

/// Elsewhere the limit is left as it is.
#[cfg(not(unix))]
pub fn make_room_for(connections: usize) -> usize {
    connections
}
