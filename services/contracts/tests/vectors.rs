//! The canonical-JSON test vectors (tests/vectors, see its README): Chorus's terms documents
//! hash as recorded, RFC 8785's published examples come out byte for byte, and Python's
//! standard library reproduces the documents' hashes as the README tells outside verifiers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chorus_contracts::domain::document::{TermsDocument, canonical_json, sha256_hex};

const DOCUMENTS: [&str; 3] = ["cash-only", "full-mix", "exclusivity-usage"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn terms_documents_hash_as_recorded() {
    for name in DOCUMENTS {
        let input = read(&format!("{name}.json"));
        let document: TermsDocument = serde_json::from_str(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = read(&format!("{name}.jcs"));
        assert_eq!(document.canonical_json().unwrap(), expected, "{name}");
        assert_eq!(
            document.sha256_hex().unwrap(),
            read(&format!("{name}.sha256")).trim(),
            "{name}"
        );
        // The input as plain JSON canonicalizes the same: the domain adds and drops nothing.
        let value: serde_json::Value = serde_json::from_str(&input).unwrap();
        assert_eq!(canonical_json(&value).unwrap(), expected, "{name}");
        assert_eq!(sha256_hex(expected.as_bytes()), document.sha256_hex().unwrap());
    }
}

#[test]
fn rfc_8785_examples_come_out_byte_for_byte() {
    for name in ["rfc8785-primitives", "rfc8785-sorting"] {
        let input: serde_json::Value = serde_json::from_str(&read(&format!("{name}.input.json"))).unwrap();
        assert_eq!(canonical_json(&input).unwrap(), read(&format!("{name}.jcs")), "{name}");
    }
}

#[test]
fn rfc_8785_appendix_b_numbers() {
    let table = read("rfc8785-numbers.txt");
    let rows: Vec<(&str, &str)> = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once(' ').unwrap())
        .collect();
    assert_eq!(rows.len(), 24);
    for (bits, expected) in rows {
        let number = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        assert_eq!(canonical_json(&number).unwrap(), expected, "{bits}");
    }
}

#[test]
fn python_reproduces_the_document_hashes() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not found: skipped (CI has it)");
        return;
    }
    let out = Command::new("python3")
        .arg(dir().join("check.py"))
        .arg(dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for name in DOCUMENTS {
        assert!(
            stdout.contains(&format!("ok {name} {}", read(&format!("{name}.sha256")).trim())),
            "{stdout}"
        );
    }
}
