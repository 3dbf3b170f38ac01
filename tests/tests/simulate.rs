//! The lifecycle simulator end to end: `chorus up --simulated-clock` as a process, then
//! `chorus simulate --influencers 1000` as another, against it. The simulator plays the nanos
//! and shoppers, moves the clock past due dates and grace periods, and checks what the services
//! did against what it planted; it exits 0 only if every check held.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chorus_e2e::workspace_binary;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const NANOS: &str = "1000";

/// `chorus up --simulated-clock` on free ports; killed when dropped.
struct Up {
    child: Child,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each banner line's address by service name ("identity", ..., "links"), read until the
/// banner ends.
fn banner(lines: &mpsc::Receiver<String>, stderr: &std::path::Path) -> HashMap<String, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    let mut addrs = HashMap::new();
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| {
                let stderr = std::fs::read_to_string(stderr).unwrap_or_default();
                panic!(
                    "chorus up did not finish its banner ({e}):\n{}\n--- stderr:\n{stderr}",
                    seen.join("\n")
                )
            });
        if line.starts_with("Press ctrl-c") {
            return addrs;
        }
        let mut words = line.split_whitespace();
        if let (Some(name), Some(addr)) = (words.next(), words.next())
            && addr.starts_with("127.0.0.1:")
        {
            addrs.insert(name.to_owned(), addr.to_owned());
        }
        seen.push(line);
    }
}

#[test]
fn a_simulated_campaign_with_a_thousand_nanos_passes_every_check() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let up_stderr = tmp.path().join("up.stderr");
    let mut command = Command::new(workspace_binary("chorus"));
    command
        .args(["up", "--simulated-clock", "--data-dir"])
        .arg(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&up_stderr).unwrap())
        .env_remove("RUST_LOG");
    for service in [
        "identity",
        "registry",
        "matching",
        "contracts",
        "payouts",
        "measurement",
    ] {
        command.args(["--port", &format!("{service}=0")]);
    }
    command
        .env("CHORUS_MEASUREMENT_HTTP_PORT", "0")
        .env("CHORUS_GATEWAY_PORT", "0");
    let mut up = Up {
        child: command.spawn().unwrap(),
    };
    let stdout = up.child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addrs = banner(&lines, &up_stderr);
    let url = |name: &str| {
        format!(
            "http://{}",
            addrs.get(name).unwrap_or_else(|| panic!("no {name} in {addrs:?}"))
        )
    };

    // The client, pointed at this chorus up and its dev token.
    let client = |args: &[&str]| {
        let mut command = Command::new(workspace_binary("chorus"));
        command
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("CHORUS_TOKEN");
        for (var, name) in [
            ("CHORUS_IDENTITY_ENDPOINT", "identity"),
            ("CHORUS_ENDPOINT", "registry"),
            ("CHORUS_MATCHING_ENDPOINT", "matching"),
            ("CHORUS_CONTRACTS_ENDPOINT", "contracts"),
            ("CHORUS_PAYOUTS_ENDPOINT", "payouts"),
            ("CHORUS_MEASUREMENT_ENDPOINT", "measurement"),
        ] {
            command.env(var, url(name));
        }
        command
            .env("CHORUS_LINKS_ADDR", &addrs["links"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let run = client(&["simulate", "--influencers", NANOS, "--seed", "11"]);
    let took = started.elapsed();
    let (out, err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    let context = format!("--- stdout:\n{out}\n--- stderr:\n{err}");
    assert!(
        run.status.success(),
        "chorus simulate failed ({:?}):\n{context}",
        run.status
    );
    assert!(out.contains("All checks passed."), "{context}");
    assert!(!out.contains("[FAILED]"), "{context}");
    for check in [
        "planted non-compliant captions caught by the disclosure checker",
        "0 compliant captions flagged",
        "approved posts paid exactly once",
        "the ledger balances",
        "contracts never delivered are breached",
        "is found significant",
    ] {
        assert!(
            out.lines().any(|l| l.contains("[ok]") && l.contains(check)),
            "no passed check {check:?}:\n{context}"
        );
    }
    // Some of each planted behaviour happened: the checks were not vacuous.
    for planted in [" of 0 planted", "0 of 0 contracts never delivered"] {
        assert!(!out.contains(planted), "{planted:?}:\n{context}");
    }
    eprintln!("chorus simulate --influencers {NANOS} took {took:?}");

    // Where everyone stands, from the services' lists: what the simulator printed.
    let campaign = out
        .split_whitespace()
        .find(|w| w.starts_with("campaigns/"))
        .map(|w| w.trim_end_matches(':'))
        .unwrap_or_else(|| panic!("no campaign named:\n{context}"));
    let status = client(&["campaigns", "status", campaign, "--json"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n = |stage: &str| {
        status["counts"][stage]
            .as_u64()
            .unwrap_or_else(|| panic!("no {stage}: {status}"))
    };
    assert_eq!(n("offered"), 1000, "{status}");
    assert_eq!(n("accepted") + n("declined"), 1000, "every offer answered: {status}");
    assert!(n("declined") > 0 && n("countered") > 0, "{status}");
    assert_eq!(n("signed"), n("accepted"), "{status}");
    assert_eq!(n("paid"), n("approved"), "{status}");
    assert_eq!(n("completed") + n("breached"), n("signed"), "{status}");
    assert!(n("breached") > 0 && n("overdue") >= n("breached"), "{status}");
    assert_eq!(status["stuck"], serde_json::json!([]), "{status}");
}
