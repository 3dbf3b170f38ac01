//! The gateway's HTTP/JSON API fuzzed from its own OpenAPI document by schemathesis (PyPI, in
//! the venv `scripts/test` makes), against a real `chorus up`: thousands of generated requests,
//! valid and not, with the dev token and without. What must hold for every one of them:
//!
//! - no server error (a 5xx is a bug: bad input is a 4xx naming the fields);
//! - every answer has a documented status, content type and headers, and its body matches the
//!   schema the document gives for it;
//! - a request the schema rules out (a wrong type, a value outside an enum) is refused;
//! - a call without a token or with a made-up one is refused, except by the methods the protos
//!   mark `allow_anonymous`, which the document marks `security: []`;
//! - a method the path does not have is 405 and `Allow` lists exactly the documented ones.
//!
//! Left out: `positive_data_acceptance`, which expects every schema-valid request to succeed.
//! A proto-derived schema cannot say what the services check (names are UUIDs, amounts are
//! positive, a brief needs a niche), so those requests are INVALID_ARGUMENT naming the fields,
//! as they should be; and the stateful checks, which need links between operations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use chorus_e2e::free_port;
use common::*;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,ignored_auth,unsupported_method,allow_header_conformance";

#[test]
fn the_gateway_survives_schemathesis_on_its_own_openapi_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schemathesis = root.join(".tools/venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: scripts/test installs schemathesis there",
        schemathesis.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut up = Up::start(&data_dir, free_port(), tmp.path().join("up.stderr"));
    up.wait_up();
    // Some data, so that lists answer with items to check against their schemas.
    let seeded = client(up.port, &data_dir, &["seed", "--influencers", "20", "--seed", "7"]);
    assert!(seeded.status.success(), "{}", seeded.describe());
    let token = std::fs::read_to_string(data_dir.join("dev-token")).unwrap();

    let out = Command::new(&schemathesis)
        .current_dir(tmp.path())
        .args(["run", &format!("http://127.0.0.1:{}/openapi.json", up.gateway_port)])
        .args(["--header", &format!("Authorization: Bearer {}", token.trim())])
        .args(["--checks", CHECKS])
        // One worker: hypothesis is not thread-safe under 3.11's ast module (a spurious
        // "AST constructor recursion depth mismatch" with more).
        .args(["--workers", "1", "--max-examples", "8", "--seed", "20261128"])
        .args(["--request-timeout", "20"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures\n{stdout}\n{}\n--- chorus up\n{}",
        String::from_utf8_lossy(&out.stderr),
        up.output()
    );
    // It reached every operation of the document.
    let tested = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("Tested:"))
        .unwrap_or_else(|| panic!("no 'Tested:' line\n{stdout}"));
    let selected = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("Selected:"))
        .unwrap_or_else(|| panic!("no 'Selected:' line\n{stdout}"));
    let count = |l: &str| l.split(':').nth(1).unwrap().trim().split('/').next().unwrap().trim().parse::<u32>().unwrap();
    assert!(count(selected) > 50, "{selected}");
    assert_eq!(count(tested), count(selected), "{stdout}");
    up.stop("TERM");
}
