//! Running `chorus up` as a newcomer would, and the `chorus` client against it: shared by the
//! end-to-end tests that need the whole suite on one node.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chorus_e2e::workspace_binary;
use serde_json::Value;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How long `chorus up` may take to print that it is up (a debug build, migrations included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to exit after SIGINT or SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one client command may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

pub const REGISTRY: &str = "chorus.registry.v1.RegistryService";

/// The `chorus` command with nothing inherited that could point it elsewhere.
pub fn chorus() -> Command {
    let mut command = Command::new(workspace_binary("chorus"));
    for var in [
        "CHORUS_ENDPOINT",
        "CHORUS_MATCHING_ENDPOINT",
        "CHORUS_CONTRACTS_ENDPOINT",
        "CHORUS_TOKEN",
        "CHORUS_DATA_DIR",
        "CHORUS_HOST",
        "CHORUS_REGISTRY_PORT",
        "CHORUS_MATCHING_PORT",
        "CHORUS_IDENTITY_PORT",
        "CHORUS_CONTRACTS_PORT",
        "CHORUS_MEASUREMENT_PORT",
        "CHORUS_MEASUREMENT_HTTP_PORT",
        "CHORUS_GATEWAY_PORT",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    command
}

/// Sends `signal` (for example "-INT") to a process.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid} failed: {status}");
}

/// A running `chorus up`: its stdout read line by line on a thread, its stderr in a file;
/// killed on drop, so a failing test leaves nothing running.
pub struct Up {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub stdout: Vec<String>,
    pub stderr_path: PathBuf,
    pub port: u16,
    /// Picked by `chorus up` itself (`--port matching=0`) and read from its banner.
    pub matching_port: u16,
    /// As `matching_port`, for contracts.
    pub contracts_port: u16,
    /// As `matching_port`, for payouts.
    pub payouts_port: u16,
    /// As `matching_port`, for measurement.
    pub measurement_port: u16,
    /// As `matching_port`, for webhooks.
    pub webhooks_port: u16,
    /// As `matching_port`, for the gateway (HTTP).
    pub gateway_port: u16,
    /// As `matching_port`, for identity.
    pub identity_port: u16,
}

impl Up {
    pub fn start(data_dir: &Path, port: u16, stderr_path: PathBuf) -> Up {
        Up::start_with(data_dir, port, stderr_path, &[])
    }

    /// As [`Up::start`], with environment variables of its own.
    pub fn start_with(data_dir: &Path, port: u16, stderr_path: PathBuf, env: &[(&str, &str)]) -> Up {
        Up::launch(data_dir, port, stderr_path, env, &[])
    }

    /// As [`Up::start`], running only the registry (`--only registry`, and the issuer).
    pub fn start_registry_only(data_dir: &Path, port: u16, stderr_path: PathBuf) -> Up {
        Up::launch(data_dir, port, stderr_path, &[], &["--only", "registry"])
    }

    pub fn launch(data_dir: &Path, port: u16, stderr_path: PathBuf, env: &[(&str, &str)], args: &[&str]) -> Up {
        let stderr = File::create(&stderr_path).unwrap();
        let mut child = chorus()
            .envs(env.iter().copied())
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--port",
                &format!("registry={port}"),
                "--port",
                "matching=0",
                "--port",
                "identity=0",
                "--port",
                "contracts=0",
                "--port",
                "payouts=0",
                "--port",
                "measurement=0",
                "--port",
                "webhooks=0",
            ])
            .env("CHORUS_MEASUREMENT_HTTP_PORT", "0")
            // Tests run side by side: the gateway takes a free port too.
            .env("CHORUS_GATEWAY_PORT", "0")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up {
            child,
            lines,
            stdout: Vec::new(),
            stderr_path,
            port,
            matching_port: 0,
            contracts_port: 0,
            payouts_port: 0,
            measurement_port: 0,
            webhooks_port: 0,
            gateway_port: 0,
            identity_port: 0,
        }
    }

    /// What the process printed so far, for assertion messages.
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        format!(
            "--- chorus up stdout:\n{}\n--- chorus up stderr:\n{stderr}",
            self.stdout.join("\n")
        )
    }

    /// Reads stdout until a line contains `needle`; fails on timeout or if the process ends.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.stdout.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let output = self.output();
                    panic!("chorus up did not print {needle:?} within {timeout:?}\n{output}");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    let output = self.output();
                    panic!("chorus up closed stdout ({status}) before printing {needle:?}\n{output}");
                }
            }
        }
    }

    /// Waits for the banner, checks the endpoint it names, then for health to say SERVING.
    pub fn wait_up(&mut self) {
        self.wait_for_line("Chorus is up", START_TIMEOUT);
        let endpoint = self.wait_for_line(REGISTRY, START_TIMEOUT);
        let expected = format!("127.0.0.1:{}", self.port);
        assert!(
            endpoint.contains(&expected),
            "the registry line should name {expected}: {endpoint:?}"
        );
        self.matching_port = self.wait_for_port("matching");
        self.contracts_port = self.wait_for_port("contracts");
        self.payouts_port = self.wait_for_port("payouts");
        self.measurement_port = self.wait_for_port("measurement");
        self.webhooks_port = self.wait_for_port("webhooks");
        self.gateway_port = self.wait_for_port("gateway");
        self.identity_port = self.wait_for_port("identity");
        self.wait_for_line("Press ctrl-c to stop.", START_TIMEOUT);
        wait_serving(self.port);
    }

    /// As [`Up::wait_up`], for a run without matching: its banner lists no matching.
    pub fn wait_registry_up(&mut self) {
        self.wait_for_line("Chorus is up", START_TIMEOUT);
        self.wait_for_line("Press ctrl-c to stop.", START_TIMEOUT);
        wait_serving(self.port);
        let output = self.output();
        assert!(!output.contains("  matching"), "matching does not run\n{output}");
    }

    /// Reads a service's port from its banner line.
    pub fn wait_for_port(&mut self, service: &str) -> u16 {
        let line = self.wait_for_line(&format!("  {service} "), START_TIMEOUT);
        line.split_whitespace()
            .nth(1)
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no {service} address in {line:?}"))
    }

    /// The token printed under "Dev token".
    pub fn printed_token(&mut self) -> String {
        let heading = self
            .stdout
            .iter()
            .position(|l| l.starts_with("Dev token"))
            .unwrap_or_else(|| panic!("no \"Dev token\" heading\n{}", self.output()));
        self.stdout[heading + 1].trim().to_owned()
    }

    /// Sends `signal` and waits for the process to exit.
    pub fn stop(&mut self, signal: &str) -> ExitStatus {
        send_signal(self.child.id(), signal);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let output = self.output();
                panic!("chorus up did not exit within {STOP_TIMEOUT:?} of kill {signal}\n{output}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every stdout line, up to the end of the stream (call once the process has exited).
    pub fn drain(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.stdout.push(line);
        }
        self.stdout.join("\n")
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Health answers without a token: the whole server and the registry service both SERVING.
/// On a runtime of its own, dropped on return: that closes the connection, which would
/// otherwise stay open unanswered while the test blocks on processes.
pub fn wait_serving(port: u16) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(health_serving(port));
}

pub async fn health_serving(port: u16) {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no answer yet");
    loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => {
                let mut health = HealthClient::new(channel);
                let mut serving = true;
                for service in ["", REGISTRY] {
                    let request = HealthCheckRequest {
                        service: service.to_owned(),
                    };
                    match health.check(request).await {
                        Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => {}
                        Ok(r) => {
                            serving = false;
                            last = format!("{service:?}: status {}", r.get_ref().status);
                        }
                        Err(e) => {
                            serving = false;
                            last = format!("{service:?}: {e}");
                        }
                    }
                }
                if serving {
                    return;
                }
            }
            Err(e) => last = format!("connect: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "health did not answer SERVING on port {port} within {START_TIMEOUT:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a finished client command printed.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.describe()))
    }
}

/// Runs `chorus <args>` against the registry on `port`, with the data dir that holds the dev
/// token; killed if it outlives CLIENT_TIMEOUT.
pub fn client(port: u16, data_dir: &Path, args: &[&str]) -> Run {
    let mut command = chorus();
    command
        .args(["--endpoint", &format!("http://127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(args);
    run(command, &args.join(" "))
}

/// Runs tests/clients/outside_client.py (Python grpcio and grpcio-reflection, in the venv
/// `scripts/test` makes) against the registry on `port`; its JSON lines.
pub fn outside_client(port: u16, data_dir: &Path) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test installs grpcio and grpcio-reflection there",
        python.display()
    );
    let token = std::fs::read_to_string(data_dir.join("dev-token")).unwrap();
    let out = Command::new(python)
        .arg(root.join("tests/clients/outside_client.py"))
        .arg(format!("127.0.0.1:{port}"))
        .arg(token.trim())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the outside client failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Runs `chorus campaigns <args>` against the matching service of `up`.
pub fn campaigns(up: &Up, data_dir: &Path, args: &[&str]) -> Run {
    let mut command = chorus();
    command
        .args(["--matching-endpoint", &format!("http://127.0.0.1:{}", up.matching_port)])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("campaigns")
        .args(args);
    run(command, &format!("campaigns {}", args.join(" ")))
}

/// Runs `chorus <args>` against the contracts service of `up`, with `token` or the dev token.
pub fn contracts(up: &Up, data_dir: &Path, token: Option<&str>, args: &[&str]) -> Run {
    let mut command = chorus();
    command
        .args([
            "--contracts-endpoint",
            &format!("http://127.0.0.1:{}", up.contracts_port),
            "--payouts-endpoint",
            &format!("http://127.0.0.1:{}", up.payouts_port),
        ])
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    command.args(args);
    run(command, &args.join(" "))
}

/// Polls `probe` every 100 ms for up to 20 s until it answers.
pub fn wait_until<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn run(mut command: Command, what: &str) -> Run {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`chorus {what}` did not finish within {CLIENT_TIMEOUT:?}; stdout so far:\n{}",
                stdout.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The offer template of the contract flows: one feed post by 2027-01-30 for 250 USD, US rules.
pub fn offer_template(campaign: &str) -> Vec<&str> {
    vec![
        "offers",
        "template",
        campaign,
        "--brand",
        "Pawsome",
        "--brand-name",
        "@pawsome",
        "--deliverable",
        "instagram:feed-post:1:2027-01-30",
        "--cash",
        "250 USD",
        "--jurisdiction",
        "US",
        "--json",
    ]
}

/// A token for `influencer` (role influencer, contracts.respond and payouts.self), minted with
/// the issuer's key of the data directory.
pub fn influencer_token(up: &Up, data_dir: &Path, influencer: &str) -> String {
    let minted = client(
        up.port,
        data_dir,
        &[
            "token",
            "--role",
            "influencer",
            "--subject",
            influencer,
            "--tenant",
            "",
            "--scopes",
            "contracts.respond,payouts.self",
        ],
    );
    assert!(minted.status.success(), "{}", minted.describe());
    minted.stdout.trim().to_owned()
}

/// The brand deposits 1,000 USD for `campaign` (`deposit`), then `contract`'s pay is held.
pub fn fund_until_held(brand: &dyn Fn(&[&str]) -> Run, campaign: &str, contract: &str, deposit: &str) {
    let reference = format!("REF-{deposit}");
    brand(&[
        "ledger",
        "fund",
        campaign,
        "--amount",
        "1000 USD",
        "--deposit-id",
        deposit,
        "--bank-transfer",
        &reference,
    ]);
    wait_until(|| {
        let c = brand(&["contracts", "get", contract, "--json"]).json();
        (c["funding"] == "FUNDING_HELD").then_some(())
    });
}

/// The influencer onboards as a payee: PayPal, a W-9 signed 2026-11-01.
pub fn onboard_payee(as_influencer: &dyn Fn(&[&str]) -> Run, legal_name: &str, email: &str) {
    let paypal = format!("paypal.{email}");
    as_influencer(&[
        "payee",
        "set",
        "--legal-name",
        legal_name,
        "--email",
        email,
        "--cash",
        "paypal",
        "--paypal-email",
        &paypal,
        "--tax-form",
        "w9",
        "--tax-form-signed-on",
        "2026-11-01",
        "--tax-id",
        "123-45-6789",
        "--tax-country",
        "US",
    ]);
}
