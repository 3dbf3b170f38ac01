//! The contract's PDF, read back as text with poppler's `pdftotext` (Debian: poppler-utils;
//! scripts/test installs it): every fact a reader needs is on the page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use chorus_contracts::domain::document::TermsDocument;
use chorus_contracts::domain::pdf::render;
use chorus_contracts::domain::seal::{AuditEntry, Party, SealedRecord, seal};
use chorus_kit::auth::SigningKey;

fn document(name: &str) -> TermsDocument {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sealed(document: &TermsDocument) -> SealedRecord {
    let sha = document.sha256_hex().unwrap();
    let entry = |party, signer: &str, ip: &str, user_agent: &str, sign_micros| AuditEntry {
        party,
        signer: signer.to_owned(),
        sign_micros,
        ip_address: ip.to_owned(),
        user_agent: user_agent.to_owned(),
        terms_version: document.terms_version,
        terms_sha256: sha.clone(),
    };
    let audit = vec![
        entry(
            Party::Brand,
            "users/lena@cafe-zuerich.example",
            "203.0.113.42",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            1_777_000_000_000_000,
        ),
        entry(
            Party::Influencer,
            &document.influencer,
            "2001:db8::7",
            "Chorus/2.1 (iPhone; iOS 18.3)",
            1_777_100_000_654_321,
        ),
    ];
    seal(document, audit, &SigningKey::generate().unwrap(), 1_777_100_001_000_000).unwrap()
}

/// The PDF's text, page by page (pdftotext ends each page with a form feed).
fn text_of(pdf: &[u8]) -> Vec<String> {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(file.path())
        .arg("-")
        .output()
        .expect("pdftotext (Debian: apt-get install poppler-utils; scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_pdf_shows_the_terms_and_the_audit_page() {
    let doc = document("full-mix");
    let record = sealed(&doc);
    let pdf = render(&record);
    assert!(pdf.starts_with(b"%PDF-"));
    let pages = text_of(&pdf);
    let all = pages.concat();
    for expected in [
        // Parties.
        "Café Zürich — Röstküche ? ???",
        "kaffeehaus-zuerich",
        "influencers/01939b60-1234-7567-89ab-cdef01234568",
        "campaigns/01939b6d-0000-7abc-8def-0123456789ac",
        // Deliverables: count, kind, platform, due date.
        "3 × short video on TikTok, each due by 2026-05-15 09:30 UTC",
        "2 × story on Instagram, each due by 2026-05-20 18:00 UTC",
        "1 × blog post on blog, each due by 2026-06-01 00:00 UTC",
        // Compensation.
        "Cash: 1200.00 EUR, released in 6 parts of 200.00 EUR",
        "Amazon.de gift card, 50.00 EUR",
        "Café Zürich Geschenkkarte gift card, 25.00 EUR",
        "2 × Espresso „Nonna“ 1 kg, ganze Bohne (SKU CZ-ESP-1KG), declared value 34.90 EUR each",
        "(SKU CZ-MUG-01), declared value 12.99 EUR each",
        "Total value: 1357.79 EUR",
        // The other terms.
        "organic social; for 30 days",
        "jurisdiction DE",
        "language \"de\"",
        "The brand reviews each post",
        "reports: reach, video_views, link_clicks",
        "Within 14 days",
        "missing 5 days after its due date",
        "Bitte „Anzeige“ oben nennen.",
    ] {
        assert!(all.contains(expected), "{expected:?} not in:\n{all}");
    }
    let audit = pages.last().unwrap();
    for expected in [
        "Audit trail",
        "Signature 1: the brand",
        "users/lena@cafe-zuerich.example",
        "203.0.113.42",
        "Firefox/128.0",
        "2026-04-24T03:06:40.000000Z",
        "Signature 2: the influencer",
        "2001:db8::7",
        "Chorus/2.1 (iPhone; iOS 18.3)",
        "Terms version: 3",
        record.terms_sha256.as_str(),
        record.seal.key_id.as_str(),
        record.seal.signature.as_str(),
        "Sealed at: 2026-04-25T06:53:21.000000Z",
    ] {
        assert!(audit.contains(expected), "{expected:?} not on the audit page:\n{audit}");
    }
    assert!(pages[0].contains(&record.terms_sha256), "the hash heads the terms");
}

#[test]
fn long_terms_wrap_and_continue_on_more_pages() {
    let mut value: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/vectors/exclusivity-usage.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let terms = &mut value["terms"];
    let entry = terms["deliverables"][0].clone();
    let brief = "Film the unboxing, the first meal and a week later; say what changed. ".repeat(25);
    terms["deliverables"] = (0..10)
        .map(|_| {
            let mut e = entry.clone();
            e["brief"] = brief.trim().into();
            e
        })
        .collect();
    let product = terms["compensation"]["products"][0].clone();
    terms["compensation"]["products"] = (0..20)
        .map(|i| {
            let mut p = product.clone();
            p["sku"] = format!("PAW-{i:03}").into();
            p
        })
        .collect();
    terms["notes"] = "n".repeat(3_000).into();
    let doc: TermsDocument = serde_json::from_value(value).unwrap();
    let pages = text_of(&render(&sealed(&doc)));
    assert!(pages.len() >= 4, "{} pages", pages.len());
    let all = pages.concat();
    assert!(all.contains("PAW-019"), "the last product is there");
    assert!(all.contains("50000 JPY"), "yen have no decimals");
    assert!(all.contains("page 1 of"), "{}", pages[0]);
    // No line runs past the right margin: pdftotext keeps each line within the page width.
    let widest = all.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest < 130, "a line of {widest} characters");
    assert!(pages.last().unwrap().contains("Audit trail"));
}
