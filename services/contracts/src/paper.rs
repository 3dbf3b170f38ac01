//! Where a contract meets its paperwork: writing the terms document and its hash onto a
//! contract, sealing it once both parties signed, and the documents a party downloads. The
//! rules of each are in `domain::{terms, document, seal, pdf}`; this joins them to the stored
//! messages.

use chorus_kit::Error;
use chorus_kit::auth::SigningKey;
use chorus_kit::clock::{micros, timestamp};
use chorus_proto::contracts::{Contract, Party, Seal, Signature};

use crate::domain::document::{Brand, TermsDocument};
use crate::domain::seal::{AuditEntry, SealedRecord};
use crate::domain::terms::Terms;
use crate::error::party_name;

/// The terms document of a contract as it stands.
pub fn document(c: &Contract, tenant: &str, terms: &Terms) -> TermsDocument {
    TermsDocument {
        schema: crate::domain::document::SCHEMA.to_owned(),
        contract: c.name.clone(),
        terms_version: c.terms_version,
        campaign: c.campaign.clone(),
        brand: Brand {
            tenant: tenant.to_owned(),
            display_name: c.brand_display_name.clone(),
        },
        influencer: c.influencer.clone(),
        terms: terms.clone(),
    }
}

/// Sets the contract's terms (already validated) with their canonical document and hash.
pub fn write_terms(c: &mut Contract, tenant: &str, terms: &Terms) {
    let doc = document(c, tenant, terms);
    c.terms = Some(terms.to_proto());
    c.terms_json = doc.canonical_json();
    c.terms_sha256 = doc.sha256_hex();
}

/// The contract's stored terms, read back into the domain's type.
pub fn terms_of(c: &Contract) -> Result<Terms, Error> {
    let proto = c.terms.clone().unwrap_or_default();
    Terms::parse(&proto, "terms").map_err(|e| Error::internal("read stored terms", e))
}

fn audit(c: &Contract) -> Vec<AuditEntry> {
    c.signatures
        .iter()
        .filter(|s| s.terms_version == c.terms_version)
        .map(|s: &Signature| AuditEntry {
            party: party_name(Party::try_from(s.party).unwrap_or(Party::Unspecified)),
            signer: s.signer.clone(),
            sign_time: micros(&s.sign_time.unwrap_or_default()),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            terms_version: s.terms_version,
            terms_sha256: s.terms_sha256.clone(),
        })
        .collect()
}

/// Seals a contract both parties signed: the platform's signature over the hash and the audit
/// trail.
pub fn seal(c: &mut Contract, tenant: &str, key: &SigningKey, now: i64) -> Result<(), Error> {
    let terms = terms_of(c)?;
    let record = crate::domain::seal::seal(&document(c, tenant, &terms), audit(c), key, now)?;
    c.seal = Some(Seal {
        key_id: record.seal.key_id.clone(),
        algorithm: record.seal.algorithm.clone(),
        signature: record.seal.signature.clone(),
        seal_time: Some(timestamp(now)),
    });
    Ok(())
}

/// The sealed record of a sealed contract, as `chorus contracts verify` reads it.
pub fn record(c: &Contract, tenant: &str) -> Result<SealedRecord, Error> {
    let terms = terms_of(c)?;
    let seal = c.seal.as_ref().ok_or_else(|| Error::internal_msg("contract is not sealed"))?;
    SealedRecord::from_parts(&document(c, tenant, &terms), audit(c), seal)
}

/// The readable PDF: the terms, and the audit page with what is known so far.
pub fn pdf(c: &Contract, tenant: &str) -> Result<Vec<u8>, Error> {
    let terms = terms_of(c)?;
    Ok(crate::domain::pdf::render_parts(
        &document(c, tenant, &terms),
        &audit(c),
        c.seal.as_ref(),
    ))
}
