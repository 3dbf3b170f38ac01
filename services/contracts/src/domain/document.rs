//! The terms document both parties sign: the terms with the contract, its version and the
//! parties, written as RFC 8785 canonical JSON (JCS), and the SHA-256 of those bytes. Every
//! number in it is an integer below 2^53 and every key is ASCII, so the canonical form is also
//! what a plain "sorted keys, no spaces" JSON writer gives (tests/vectors/README.md).

use chorus_kit::Error;
use chorus_kit::names::{CampaignName, InfluencerName};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::terms::Terms;

/// The schema of the terms document; a new one gets a new version.
pub const SCHEMA: &str = "chorus.contracts.terms/v1";

/// The document's `schema` member: always [`SCHEMA`], and a document naming another is not
/// read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schema;

impl Serialize for Schema {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(SCHEMA)
    }
}

impl<'de> Deserialize<'de> for Schema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Schema, D::Error> {
        let s = String::deserialize(d)?;
        if s == SCHEMA {
            Ok(Schema)
        } else {
            Err(D::Error::custom(format!("schema {s:?} is not {SCHEMA:?}")))
        }
    }
}

/// The brand party: its tenant and the name it contracts under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    pub tenant: String,
    pub display_name: String,
}

/// What both parties sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermsDocument {
    pub schema: Schema,
    /// "contracts/{id}".
    pub contract: String,
    /// 1, 2, ...: a new version each time the terms are amended.
    pub terms_version: i32,
    /// "campaigns/{id}".
    pub campaign: String,
    pub brand: Brand,
    /// "influencers/{id}".
    pub influencer: String,
    pub terms: Terms,
}

impl TermsDocument {
    /// The document of version `terms_version` of contract `contract` ("contracts/{id}").
    pub fn new(
        contract: impl Into<String>,
        terms_version: i32,
        campaign: &CampaignName,
        brand: Brand,
        influencer: &InfluencerName,
        terms: Terms,
    ) -> Self {
        TermsDocument {
            schema: Schema,
            contract: contract.into(),
            terms_version,
            campaign: campaign.to_string(),
            brand,
            influencer: influencer.to_string(),
            terms,
        }
    }

    /// The RFC 8785 canonical JSON: the bytes whose hash is signed (`Contract.terms_json`).
    pub fn canonical_json(&self) -> Result<String, Error> {
        canonical_json(self)
    }

    /// Lower-case hex SHA-256 of [`TermsDocument::canonical_json`] (`Contract.terms_sha256`).
    pub fn sha256_hex(&self) -> Result<String, Error> {
        Ok(sha256_hex(self.canonical_json()?.as_bytes()))
    }
}

/// RFC 8785 canonical JSON of any serializable value. It fails only for what JSON cannot
/// hold (a non-finite number, a map with non-string keys), which the documents never have.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json_canonicalizer::to_string(value).map_err(|e| Error::internal("write canonical json", e))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::document;

    #[test]
    fn the_document_is_canonical_json_with_readable_names() {
        let json = document().canonical_json().unwrap();
        assert!(
            json.starts_with(r#"{"brand":{"display_name":"Voltra Drinks","tenant":"voltra"},"campaign":"campaigns/"#)
        );
        assert!(json.contains(r#""kind":"feed_post","platform":"instagram""#), "{json}");
        assert!(
            json.contains(r#""cash":{"amount_minor":25000,"currency":"USD"}"#),
            "{json}"
        );
        assert!(json.contains(r#""due_time":"2026-04-01T17:00:00.000000Z""#), "{json}");
        assert!(json.contains(r#""schema":"chorus.contracts.terms/v1""#), "{json}");
        assert!(
            !json.contains('\n') && !json.contains("\": "),
            "no white space between tokens: {json}"
        );
    }

    #[test]
    fn the_document_reads_back_to_the_same_hash() {
        let doc = document();
        let again: TermsDocument = serde_json::from_str(&doc.canonical_json().unwrap()).unwrap();
        assert_eq!(again, doc);
        assert_eq!(again.sha256_hex().unwrap(), doc.sha256_hex().unwrap());
        assert_eq!(doc.sha256_hex().unwrap().len(), 64);
    }

    #[test]
    fn another_schema_or_invalid_terms_are_not_read() {
        let json = document().canonical_json().unwrap();
        let other = json.replace("terms/v1", "terms/v2");
        let err = serde_json::from_str::<TermsDocument>(&other).unwrap_err();
        assert!(err.to_string().contains("schema"), "{err}");
        let zero = json.replace(r#""cash":{"amount_minor":25000"#, r#""cash":{"amount_minor":0"#);
        let err = serde_json::from_str::<TermsDocument>(&zero).unwrap_err();
        assert!(
            err.to_string().contains("terms.compensation.cash.amount_minor"),
            "{err}"
        );
        let extra = json.replacen('{', r#"{"extra":1,"#, 1);
        assert!(serde_json::from_str::<TermsDocument>(&extra).is_err());
    }

    #[test]
    fn sha256_hex_is_lower_case_hex() {
        // FIPS 180-2's "abc".
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
