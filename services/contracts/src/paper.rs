//! Where a contract meets its paperwork: writing the terms document and its hash onto a
//! contract, sealing it once both parties signed, and the documents a party downloads. The
//! rules of each are in `domain::{terms, document, seal, pdf}`; this joins them to the stored
//! messages.

use chorus_kit::Error;
use chorus_kit::auth::SigningKey;
use chorus_kit::clock::micros;
use chorus_kit::names::{CampaignName, InfluencerName, ResourceName};
use chorus_proto::contracts::Contract;

use crate::domain::document::{Brand, TermsDocument};
use crate::domain::pdf::{Paper, render_parts};
use crate::domain::seal::{AuditEntry, Seal, SealedRecord};
use crate::domain::terms::Terms;

/// The terms document of a contract as it stands.
pub fn document(c: &Contract, tenant: &str, terms: &Terms) -> Result<TermsDocument, Error> {
    let campaign = CampaignName::parse(&c.campaign).ok_or_else(|| Error::invalid_field("campaign", "malformed"))?;
    let influencer =
        InfluencerName::parse(&c.influencer).ok_or_else(|| Error::invalid_field("influencer", "malformed"))?;
    Ok(TermsDocument::new(
        c.name.clone(),
        c.terms_version,
        &campaign,
        Brand {
            tenant: tenant.to_owned(),
            display_name: c.brand_display_name.clone(),
        },
        &influencer,
        terms.clone(),
    ))
}

/// Sets the contract's terms (already validated) with their canonical document and hash.
pub fn write_terms(c: &mut Contract, tenant: &str, terms: &Terms) -> Result<(), Error> {
    let doc = document(c, tenant, terms)?;
    c.terms = Some(terms.to_proto());
    c.terms_json = doc.canonical_json()?;
    c.terms_sha256 = doc.sha256_hex()?;
    Ok(())
}

/// The contract's stored terms, read back into the domain's type.
pub fn terms_of(c: &Contract) -> Result<Terms, Error> {
    let proto = c.terms.clone().unwrap_or_default();
    Terms::parse(&proto, "terms").map_err(|e| Error::internal("read stored terms", e))
}

/// The signatures of the current terms version, as the audit trail lists them.
fn audit(c: &Contract) -> Vec<AuditEntry> {
    c.signatures
        .iter()
        .filter(|s| s.terms_version == c.terms_version)
        .filter_map(AuditEntry::from_proto)
        .collect()
}

/// Seals a contract both parties signed: the platform's signature over the document, its hash
/// and the audit trail.
pub fn seal(c: &mut Contract, tenant: &str, terms: &Terms, key: &SigningKey, now: i64) -> Result<(), Error> {
    let record = crate::domain::seal::seal(&document(c, tenant, terms)?, audit(c), key, now)?;
    c.seal = Some(record.seal.to_proto());
    Ok(())
}

fn stored_seal(c: &Contract) -> Option<Seal> {
    c.seal.as_ref().map(|s| Seal {
        key_id: s.key_id.clone(),
        algorithm: s.algorithm.clone(),
        signature: s.signature.clone(),
        seal_micros: s.seal_time.as_ref().map_or(0, micros),
    })
}

/// The sealed record of a sealed contract, as `chorus contracts verify` reads it; None before
/// the seal.
pub fn record(c: &Contract, tenant: &str) -> Result<Option<SealedRecord>, Error> {
    let Some(seal) = stored_seal(c) else {
        return Ok(None);
    };
    let terms = terms_of(c)?;
    Ok(Some(SealedRecord {
        document: document(c, tenant, &terms)?,
        terms_sha256: c.terms_sha256.clone(),
        audit: audit(c),
        seal,
    }))
}

/// The readable PDF: the terms, and the audit page with what is known so far.
pub fn pdf(c: &Contract, tenant: &str) -> Result<Vec<u8>, Error> {
    let terms = terms_of(c)?;
    let document = document(c, tenant, &terms)?;
    let audit = audit(c);
    let seal = stored_seal(c);
    Ok(render_parts(&Paper {
        document: &document,
        terms_sha256: &c.terms_sha256,
        audit: &audit,
        seal: seal.as_ref(),
    }))
}
