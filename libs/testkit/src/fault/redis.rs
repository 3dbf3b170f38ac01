//! A private Redis server: `redis-server` as this process's child, its data in a temporary
//! directory, every write in the append-only file before it is acknowledged.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{EXIT_DEADLINE, PREFIX, START_DEADLINE, free_port, is_alive, log_tail, owner_pid, reap_blocking, signal};
use crate::wait::retry;

/// What the fixture's temporary directories are called after [`PREFIX`].
const KIND: &str = "redis_";

/// A Redis server of this test's own on a free port of 127.0.0.1, persisting every write to its
/// append-only file before acknowledging it (`appendfsync always`), so a kill loses nothing a
/// client was told is stored. Stop it, kill it, start it again on the same port and data;
/// dropping it kills it and removes its data.
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
    server: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server on a free port with an empty data directory.
    pub async fn new() -> Self {
        sweep_leftovers();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{KIND}{}_", std::process::id()))
            .tempdir()
            .expect("create a temporary directory for private redis");
        let mut redis = PrivateRedis {
            port: free_port(),
            dir,
            server: None,
        };
        redis.start().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (the append-only files, `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// Starts the server on the fixture's port and data, and waits until it answers PING (once
    /// it has loaded the append-only file).
    pub async fn start(&mut self) {
        assert!(!self.is_running(), "private redis :{}: start, but it runs", self.port);
        let dir = self.dir.path();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(self.log_file())
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run redis-server (Debian: apt-get install redis-server)");
        self.server = Some(child);
        self.wait_until_ready().await;
    }

    /// Stops the server with SIGTERM (Redis flushes the append-only file and exits) and waits
    /// until it has exited.
    pub async fn stop(&mut self) {
        let pid = self.server_pid("stop");
        signal("TERM", &[pid]);
        self.wait_for_exit("stop").await;
    }

    /// Kills the server with SIGKILL and waits until it has exited.
    pub async fn kill(&mut self) {
        let pid = self.server_pid("kill");
        signal("KILL", &[pid]);
        self.wait_for_exit("kill").await;
    }

    /// Stops the server if it runs, then starts it.
    pub async fn restart(&mut self) {
        if self.is_running() {
            self.stop().await;
        }
        self.start().await;
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn server_pid(&self, doing: &str) -> u32 {
        self.server
            .as_ref()
            .and_then(Child::id)
            .unwrap_or_else(|| panic!("private redis :{}: {doing}, but it is not running", self.port))
    }

    async fn wait_until_ready(&mut self) {
        let (url, port, log_file) = (self.url(), self.port, self.log_file());
        let Some(server) = self.server.as_mut() else {
            return;
        };
        let client = redis::Client::open(url).expect("a redis URL");
        let ready = retry(START_DEADLINE, || {
            if let Ok(Some(status)) = server.try_wait() {
                panic!(
                    "private redis :{port} exited while starting ({status})\n{}",
                    log_tail(&log_file)
                );
            }
            let client = client.clone();
            async move {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            }
        })
        .await;
        if let Err(gave_up) = ready {
            panic!(
                "private redis :{port} does not answer PING: {gave_up}\n{}",
                log_tail(&log_file)
            );
        }
    }

    async fn wait_for_exit(&mut self, doing: &str) {
        let Some(server) = self.server.as_mut() else {
            return;
        };
        match tokio::time::timeout(EXIT_DEADLINE, server.wait()).await {
            Ok(_) => self.server = None,
            Err(_) => panic!(
                "private redis :{}: {doing}: still running after {EXIT_DEADLINE:?}\n{}",
                self.port,
                log_tail(&self.log_file())
            ),
        }
    }
}

impl Drop for PrivateRedis {
    /// Kills the server; the temporary directory goes with the `TempDir`.
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.start_kill();
            if reap_blocking(&mut server, Duration::from_secs(10)).is_none() {
                eprintln!("private redis :{}: still running after SIGKILL", self.port);
            }
        }
    }
}

/// Kills the servers of earlier test processes that died without dropping their fixture, and
/// removes their directories; once per process. A server is killed only if it runs in the
/// directory (Redis works in its `--dir`), so a recycled pid is left alone.
fn sweep_leftovers() {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(|name| owner_pid(name, KIND)) else {
            continue;
        };
        if is_alive(owner) {
            continue;
        }
        let dir = entry.path();
        let server = std::fs::read_to_string(dir.join("redis.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir));
        if let Some(pid) = server {
            signal("KILL", &[pid]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
