//! Fault fixtures: a private PostgreSQL cluster ([`PrivatePostgres`]) and a private Redis server
//! ([`PrivateRedis`]) per test, which the test may stop, kill and restart without touching the
//! shared servers on :5432 and :6379. Each runs as a child process of the test, on its own port
//! and data, and is removed when the fixture is dropped.
//!
//! A fixture that cannot do what it is asked panics with the server's log. The PostgreSQL one
//! needs the Debian `postgresql` package and to run as root or as the `postgres` user;
//! the Redis one needs `redis-server`. `scripts/test` ensures both.
//!
//! **Tests that use them run one at a time**, in the `fault` test group of
//! `.config/nextest.toml`: a server killed and restarted while other heavy tests hog the CPU
//! makes for slow, flaky deadlines. The group takes every test whose binary is named `fault` or
//! `fault_*` (`tests/fault.rs`, `tests/fault_relay.rs`) and every test with a path segment
//! `fault` or `fault_*` (`mod fault { .. }`, `fn fault_relay_resends_after_redis_restart`).
//! Follow one of the two conventions when you write a fault test.
//!
//! Leftovers: a test process that dies without dropping its fixtures (killed, aborted) leaves a
//! cluster or a Redis process behind. Their names carry the test process's id
//! (`chorus_fault_<pid>_...`, `chorus_fault_redis_<pid>_...` under the temporary directory);
//! the first fixture of each test process removes those whose process is gone, and
//! `scripts/test` drops leftover clusters before a run.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod postgres;
mod redis;

pub use self::postgres::PrivatePostgres;
pub use self::redis::PrivateRedis;

/// How the fixtures name what they leave on the machine (clusters, temporary directories).
const PREFIX: &str = "chorus_fault_";

/// How long a server may take to accept connections, and to exit when asked.
const START_DEADLINE: Duration = Duration::from_secs(60);
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// A port to listen on, chosen below the kernel's ephemeral range: a fixture's server is down
/// for a while and then listens on the same port again, and while it is down a client retrying
/// its connection could be given that very port as its own (an ephemeral port, the way
/// `bind(127.0.0.1:0)` would choose one), connect to itself and keep the server from starting
/// again. Checked free by binding it; falls back to an ephemeral port.
fn free_port() -> u16 {
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let lowest = 20_000;
    if ephemeral_from > lowest + 1000 {
        for _ in 0..100 {
            let spread = u128::from(ephemeral_from - lowest);
            let offset = u16::try_from(uuid::Uuid::new_v4().as_u128() % spread).unwrap_or(0);
            let port = lowest + offset;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind a free port on 127.0.0.1")
}

/// Sends `signal` (`KILL`, `TERM`, `INT`, `QUIT`) to `pids`, ignoring those already gone. Uses
/// the shell's `kill`: `/bin/kill` comes from procps, which a minimal Debian lacks.
fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg(r#"kill -s "$0" "$@" 2>/dev/null"#)
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .status();
}

/// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "<pid> (<command>) <state> ...": the command may itself hold spaces and parentheses.
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// The test process id in a name made with [`PREFIX`] (and `kind`), if it is one of ours.
fn owner_pid(name: &str, kind: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?
        .strip_prefix(kind)?
        .split('_')
        .next()?
        .parse()
        .ok()
}

/// Whether this process runs as root (the effective user id, from `/proc/self/status`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// Waits, blocking, for `child` to exit, at most `within`; for `Drop`, which cannot await.
fn reap_blocking(child: &mut tokio::process::Child, within: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// The last lines of a server's log, for a failure message.
fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(log) => {
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(30);
            format!("--- {} (last lines)\n{}", path.display(), lines[from..].join("\n"))
        }
        Err(e) => format!("--- {}: cannot read: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_our_names() {
        assert_eq!(owner_pid("chorus_fault_4242_0a1b2c3d4e5f", ""), Some(4242));
        assert_eq!(owner_pid("chorus_fault_redis_77_x8Yz", "redis_"), Some(77));
        assert_eq!(owner_pid("chorus_fault_redis_77_x8Yz", ""), None);
        assert_eq!(owner_pid("main", ""), None);
        assert_eq!(owner_pid("chorus_test_4242", ""), None);
    }

    #[test]
    fn this_process_is_alive_and_a_free_port_binds() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX));
        let port = free_port();
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
