//! A private PostgreSQL cluster. Debian's postgresql-common tools create and drop it (so
//! `pg_lsclusters` shows it and a crashed run's leftover can be dropped like any cluster), but
//! its postmaster runs as this process's child rather than as a daemon: the fixture reaps
//! it when it is killed. A daemon killed under a container's init that does not reap would stay
//! a zombie, and PostgreSQL refuses to start while the process named in its lock files exists.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};

use super::{
    EXIT_DEADLINE, PREFIX, START_DEADLINE, free_port, is_alive, log_tail, owner_pid, reap_blocking, running_as_root,
    signal,
};
use crate::wait::retry;

/// Settings given on the postmaster's command line, over the cluster's postgresql.conf. No
/// `fsync`: a killed postmaster loses nothing the kernel has (a committed transaction's WAL is
/// written before the commit returns); only a crash of the machine would.
const SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "shared_buffers=16MB",
    "max_connections=50",
    "fsync=off",
    "full_page_writes=off",
    "ssl=off",
    "logging_collector=off",
];

/// A PostgreSQL cluster of this test's own, on a free port of 127.0.0.1, trusting every local
/// connection (user `postgres`, no password). Stop it, kill it, start it again; dropping it
/// stops and drops the cluster.
///
/// ```no_run
/// # async fn demo() {
/// let mut pg = chorus_testkit::fault::PrivatePostgres::new().await;
/// let url = pg.create_database().await;
/// // ... run a service against `url`, then:
/// pg.kill().await;
/// pg.start().await;
/// # }
/// ```
#[derive(Debug)]
pub struct PrivatePostgres {
    version: String,
    cluster: String,
    port: u16,
    /// The cluster's owner: the superuser role, and the user the postmaster runs as.
    owner: String,
    data_dir: PathBuf,
    config_file: PathBuf,
    log_file: PathBuf,
    postmaster: Option<Child>,
}

impl PrivatePostgres {
    /// Creates a cluster with the newest PostgreSQL installed, named `chorus_fault_<pid>_<id>`,
    /// and starts it. Needs root (the postmaster then runs as the cluster's owner, `postgres`),
    /// or the `postgres` user when it may write /etc/postgresql/<version> and
    /// /var/lib/postgresql/<version>, where `pg_createcluster` writes.
    pub async fn new() -> Self {
        sweep_leftovers().await;
        let version = newest_version();
        let port = free_port();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let cluster = format!("{PREFIX}{}_{}", std::process::id(), &id[..12]);
        let output = Command::new("pg_createcluster")
            .args(["--start-conf=manual", "--locale=C.UTF-8", "--port", &port.to_string()])
            .args([&version, &cluster])
            .args(["--", "--auth=trust", "--no-sync"])
            .output()
            .await
            .expect("run pg_createcluster (Debian: apt-get install postgresql)");
        if !output.status.success() {
            let hint = if running_as_root() {
                ""
            } else {
                "\n(run the tests as root, or as the postgres user with /etc/postgresql/<version> and \
                 /var/lib/postgresql/<version> writable by it: pg_createcluster writes there)"
            };
            panic!(
                "create private postgres cluster {version}/{cluster}: pg_createcluster {}\n{}{}{hint}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
        }
        let Some(row) = clusters()
            .await
            .into_iter()
            .find(|c| c.version == version && c.name == cluster)
        else {
            panic!("pg_lsclusters does not list the cluster {version}/{cluster} just created");
        };
        let conf_root = std::env::var("PG_CLUSTER_CONF_ROOT").unwrap_or_else(|_| "/etc/postgresql".to_owned());
        let mut postgres = PrivatePostgres {
            config_file: [&conf_root, &version, &cluster, "postgresql.conf"].iter().collect(),
            version,
            cluster,
            port,
            owner: row.owner,
            data_dir: row.data_dir,
            log_file: row.log_file,
            postmaster: None,
        };
        postgres.start().await;
        postgres
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`: the superuser on the `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's name, as `pg_lsclusters` lists it.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn is_running(&self) -> bool {
        self.postmaster.is_some()
    }

    /// Creates an empty database and returns its URL. The server must be running.
    pub async fn create_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("private postgres {}: connect: {e}", self.cluster));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("private postgres {}: create database {name}: {e}", self.cluster));
        let _ = admin.close().await;
        self.url_of(&name)
    }

    /// Starts the postmaster and waits until it accepts connections (after a kill, once crash
    /// recovery is done).
    pub async fn start(&mut self) {
        assert!(
            !self.is_running(),
            "private postgres {}: start, but it runs",
            self.cluster
        );
        let metadata = std::fs::metadata(&self.data_dir).unwrap_or_else(|e| {
            panic!(
                "private postgres {}: read {}: {e}",
                self.cluster,
                self.data_dir.display()
            )
        });
        let postgres = format!("/usr/lib/postgresql/{}/bin/postgres", self.version);
        let mut command = if running_as_root() {
            // The postmaster refuses to run as root: run it as the cluster's owner. setpriv
            // (util-linux, always installed) execs, so the child is the postmaster itself.
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={}", metadata.uid()))
                .arg(format!("--regid={}", metadata.gid()))
                .args(["--init-groups", "--", &postgres]);
            command
        } else {
            Command::new(&postgres)
        };
        command
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-c")
            .arg(format!("config_file={}", self.config_file.display()));
        for setting in SETTINGS {
            command.args(["-c", setting]);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .unwrap_or_else(|e| {
                panic!(
                    "private postgres {}: open {}: {e}",
                    self.cluster,
                    self.log_file.display()
                )
            });
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| panic!("private postgres {}: open log: {e}", self.cluster));
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("private postgres {}: start {postgres}: {e}", self.cluster));
        self.postmaster = Some(child);
        self.wait_until_ready().await;
    }

    /// Stops the server with a fast shutdown (clients disconnected, a checkpoint written) and
    /// waits until it has exited.
    pub async fn stop(&mut self) {
        let pid = self.postmaster_pid("stop");
        signal("INT", &[pid]);
        self.wait_for_exit("stop").await;
    }

    /// Kills the postmaster and every process of the cluster with SIGKILL at once, as when the
    /// machine or container dies, and waits until they are all gone. Nothing is written on the
    /// way down; the next start runs crash recovery. The System V shared memory segment the
    /// postmaster leaves is removed, as a reboot would (a start removes it too, but a cluster
    /// dropped while killed would leak it).
    pub async fn kill(&mut self) {
        let pid = self.postmaster_pid("kill");
        let mut pids = self.processes();
        if !pids.contains(&pid) {
            pids.push(pid);
        }
        signal("KILL", &pids);
        self.kill_the_rest().await;
        self.wait_for_exit("kill").await;
        remove_dead_shared_memory(&self.data_dir);
    }

    /// Stops the server if it runs (fast shutdown), then starts it.
    pub async fn restart(&mut self) {
        if self.is_running() {
            self.stop().await;
        }
        self.start().await;
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://{}@127.0.0.1:{}/{database}", self.owner, self.port)
    }

    fn postmaster_pid(&self, doing: &str) -> u32 {
        self.postmaster
            .as_ref()
            .and_then(Child::id)
            .unwrap_or_else(|| panic!("private postgres {}: {doing}, but it is not running", self.cluster))
    }

    async fn wait_until_ready(&mut self) {
        let url = self.url();
        let (cluster, log_file) = (&self.cluster, &self.log_file);
        let Some(postmaster) = self.postmaster.as_mut() else {
            return;
        };
        let ready = retry(START_DEADLINE, || {
            if let Ok(Some(status)) = postmaster.try_wait() {
                panic!(
                    "private postgres {cluster} exited while starting ({status})\n{}",
                    log_tail(log_file)
                );
            }
            let url = url.clone();
            async move { PgConnection::connect(&url).await?.close().await }
        })
        .await;
        if let Err(gave_up) = ready {
            panic!(
                "private postgres {cluster} does not accept connections: {gave_up}\n{}",
                log_tail(log_file)
            );
        }
    }

    async fn wait_for_exit(&mut self, doing: &str) {
        let Some(postmaster) = self.postmaster.as_mut() else {
            return;
        };
        match tokio::time::timeout(EXIT_DEADLINE, postmaster.wait()).await {
            Ok(_) => self.postmaster = None,
            Err(_) => panic!(
                "private postgres {}: {doing}: still running after {EXIT_DEADLINE:?}\n{}",
                self.cluster,
                log_tail(&self.log_file)
            ),
        }
    }

    /// SIGKILLs the cluster's processes until none is left, a backend forked just before its
    /// postmaster died included: one still attached to the shared memory would keep the next
    /// postmaster from starting.
    async fn kill_the_rest(&self) {
        let until = tokio::time::Instant::now() + EXIT_DEADLINE;
        loop {
            let pids = self.processes();
            if pids.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "private postgres {}: processes {pids:?} survive SIGKILL",
                self.cluster
            );
            signal("KILL", &pids);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The live processes of this cluster: those whose command line names it (the postmaster's
    /// `-D` argument, the others' `postgres: <version>/<cluster>: ...` titles).
    fn processes(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(self.cluster.as_str()))
            })
            .filter(|pid| is_alive(*pid))
            .collect()
    }
}

impl Drop for PrivatePostgres {
    /// Shuts the server down (immediate mode: the cluster is going anyway) and drops the
    /// cluster; best effort, reporting rather than panicking.
    fn drop(&mut self) {
        if let Some(mut postmaster) = self.postmaster.take() {
            if let Some(pid) = postmaster.id() {
                signal("QUIT", &[pid]);
            }
            if reap_blocking(&mut postmaster, Duration::from_secs(10)).is_none() {
                let mut pids = self.processes();
                pids.extend(postmaster.id());
                signal("KILL", &pids);
                let _ = reap_blocking(&mut postmaster, Duration::from_secs(5));
            }
        }
        drop_cluster(&self.version, &self.cluster);
    }
}

/// One line of `pg_lsclusters`.
#[derive(Debug)]
struct ClusterRow {
    version: String,
    name: String,
    owner: String,
    data_dir: PathBuf,
    log_file: PathBuf,
}

async fn clusters() -> Vec<ClusterRow> {
    let output = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .await
        .expect("run pg_lsclusters (Debian: apt-get install postgresql)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            // Ver Cluster Port Status Owner Data-directory Log-file
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [version, name, _port, _status, owner, data_dir, log_file] = fields[..] else {
                return None;
            };
            Some(ClusterRow {
                version: version.to_owned(),
                name: name.to_owned(),
                owner: owner.to_owned(),
                data_dir: data_dir.into(),
                log_file: log_file.into(),
            })
        })
        .collect()
}

/// The newest PostgreSQL server installed (`/usr/lib/postgresql/<version>/bin/postgres`).
fn newest_version() -> String {
    let versions = std::fs::read_dir("/usr/lib/postgresql").map(|entries| {
        entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|version| std::path::Path::new(&format!("/usr/lib/postgresql/{version}/bin/postgres")).exists())
            .collect::<Vec<_>>()
    });
    let newest = versions.ok().and_then(|versions| {
        versions.into_iter().max_by_key(|version| {
            version
                .split('.')
                .map(|part| part.parse::<u32>().unwrap_or(0))
                .collect::<Vec<_>>()
        })
    });
    newest.expect("a PostgreSQL server under /usr/lib/postgresql (Debian: apt-get install postgresql)")
}

/// Drops the clusters earlier test processes left behind when they died, once per process.
async fn sweep_leftovers() {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    for row in clusters().await {
        if owner_pid(&row.name, "").is_some_and(|pid| !is_alive(pid)) {
            remove_dead_shared_memory(&row.data_dir);
            drop_cluster(&row.version, &row.name);
        }
    }
}

/// Removes the System V shared memory segment of a postmaster that died without removing it,
/// with util-linux's `ipcrm`; best effort. postmaster.pid names the postmaster (line 1) and the
/// segment (line 7: `<key> <id>`).
fn remove_dead_shared_memory(data_dir: &Path) {
    let Ok(pid_file) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return;
    };
    let lines: Vec<&str> = pid_file.lines().collect();
    let postmaster = lines.first().and_then(|pid| pid.trim().parse::<u32>().ok());
    let segment = lines.get(6).and_then(|line| line.split_whitespace().nth(1));
    if let (Some(postmaster), Some(segment)) = (postmaster, segment)
        && !is_alive(postmaster)
    {
        let _ = std::process::Command::new("ipcrm")
            .args(["-m", segment])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `pg_dropcluster --stop`; reports a failure instead of panicking (it runs in `Drop`).
fn drop_cluster(version: &str, cluster: &str) {
    match std::process::Command::new("pg_dropcluster")
        .args(["--stop", version, cluster])
        .output()
    {
        Ok(output) if output.status.success() => {}
        Ok(output) => eprintln!(
            "private postgres {version}/{cluster}: pg_dropcluster {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(e) => eprintln!("private postgres {version}/{cluster}: run pg_dropcluster: {e}"),
    }
}
