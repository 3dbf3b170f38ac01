//! The sealed record: the terms document, its hash, the parties' signatures (the audit trail)
//! and the platform's Ed25519 seal over all of it, checkable offline with the public keys
//! GetSealingKeys lists.
//!
//! What the seal signs: the RFC 8785 canonical JSON of the record with its `seal` member
//! replaced by a `sealing` member holding every member of the seal but the signature:
//!
//! ```text
//! {"audit":[...],"document":{...},"sealing":{"algorithm":"EdDSA","key_id":"...",
//!  "seal_time":"..."},"terms_sha256":"..."}
//! ```
//!
//! so the key and the time are signed too, and nothing in the record is left out. The
//! signature is PureEdDSA (RFC 8032) over those bytes, written base64url without padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_kit::auth::SigningKey;
use chorus_kit::{Error, ErrorCode};
use chorus_proto::contracts as pb;
use chorus_proto::identity::JsonWebKey;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::{TermsDocument, canonical_json, sha256_hex};
use super::json;

/// The seal's algorithm, as JWS names Ed25519.
pub const ALGORITHM: &str = "EdDSA";

/// Who signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Brand,
    Influencer,
}

impl Party {
    pub fn from_proto(value: i32) -> Option<Party> {
        match pb::Party::try_from(value).ok()? {
            pb::Party::Brand => Some(Party::Brand),
            pb::Party::Influencer => Some(Party::Influencer),
            pb::Party::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> pb::Party {
        match self {
            Party::Brand => pb::Party::Brand,
            Party::Influencer => pb::Party::Influencer,
        }
    }

    /// As a person reads it.
    pub fn label(self) -> &'static str {
        match self {
            Party::Brand => "brand",
            Party::Influencer => "influencer",
        }
    }
}

/// One signature of the terms: who, when, from where, and what they signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub party: Party,
    /// The token's subject: "influencers/{id}", or the brand user's or app's id.
    pub signer: String,
    #[serde(rename = "sign_time", with = "json::time")]
    pub sign_micros: i64,
    pub ip_address: String,
    pub user_agent: String,
    pub terms_version: i32,
    pub terms_sha256: String,
}

impl AuditEntry {
    /// The entry of a stored signature; `None` when it names no party or no time.
    pub fn from_proto(s: &pb::Signature) -> Option<AuditEntry> {
        Some(AuditEntry {
            party: Party::from_proto(s.party)?,
            signer: s.signer.clone(),
            sign_micros: chorus_kit::clock::micros(s.sign_time.as_ref()?),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            terms_version: s.terms_version,
            terms_sha256: s.terms_sha256.clone(),
        })
    }
}

/// The platform's signature over the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// The sealing key's RFC 7638 thumbprint.
    pub key_id: String,
    /// Always [`ALGORITHM`].
    pub algorithm: String,
    /// base64url, no padding.
    pub signature: String,
    #[serde(rename = "seal_time", with = "json::time")]
    pub seal_micros: i64,
}

impl Seal {
    pub fn to_proto(&self) -> pb::Seal {
        pb::Seal {
            key_id: self.key_id.clone(),
            algorithm: self.algorithm.clone(),
            signature: self.signature.clone(),
            seal_time: Some(chorus_kit::clock::timestamp(self.seal_micros)),
        }
    }
}

/// What the seal signs of itself.
#[derive(Serialize)]
struct Sealing<'a> {
    key_id: &'a str,
    algorithm: &'a str,
    #[serde(with = "json::time")]
    seal_time: i64,
}

/// The signed contract, as `GetContractDocument` returns it in SEALED_JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedRecord {
    pub document: TermsDocument,
    /// SHA-256 of the document's canonical JSON.
    pub terms_sha256: String,
    /// The signatures of this version of the terms, oldest first.
    pub audit: Vec<AuditEntry>,
    pub seal: Seal,
}

impl SealedRecord {
    /// The record as JSON, indented for people; a verifier reads it whatever the spacing.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::internal("write sealed record", e))
    }
}

/// Seals `document` signed by `audit` with `key` at `seal_micros`. The audit must be what
/// [`verify`] accepts (both parties, each for this hash and version): anything else is
/// FAILED_PRECONDITION, so no record is sealed that would not verify.
pub fn seal(
    document: &TermsDocument,
    audit: Vec<AuditEntry>,
    key: &SigningKey,
    seal_micros: i64,
) -> Result<SealedRecord, Error> {
    let terms_sha256 = document.sha256_hex()?;
    check_audit(document, &terms_sha256, &audit)
        .map_err(|e| Error::new(ErrorCode::FailedPrecondition, format!("cannot seal: {e}")))?;
    let unsealed = Unsealed {
        document: to_value(document)?,
        terms_sha256: &terms_sha256,
        audit: to_value(&audit)?,
        sealing: Sealing {
            key_id: key.kid(),
            algorithm: ALGORITHM,
            seal_time: seal_micros,
        },
    };
    let signature = key.sign(canonical_json(&unsealed)?.as_bytes());
    Ok(SealedRecord {
        document: document.clone(),
        terms_sha256,
        audit,
        seal: Seal {
            key_id: key.kid().to_owned(),
            algorithm: ALGORITHM.to_owned(),
            signature: URL_SAFE_NO_PAD.encode(signature),
            seal_micros,
        },
    })
}

/// The signed bytes' shape: the record, its seal without the signature.
#[derive(Serialize)]
struct Unsealed<'a> {
    document: Value,
    terms_sha256: &'a str,
    audit: Value,
    sealing: Sealing<'a>,
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::internal("write sealed record", e))
}

/// What [`verify`] found in a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub record: SealedRecord,
}

/// Why a sealed record does not verify, precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a sealed record: {0}")]
    Malformed(String),
    #[error("the terms document is not valid: {0}")]
    InvalidDocument(String),
    #[error("the document's hash is {computed}, the record says {recorded}")]
    HashMismatch { recorded: String, computed: String },
    #[error("audit entry {index} ({signer}) signed hash {signed}, not the document's {expected}")]
    AuditHash {
        index: usize,
        signer: String,
        signed: String,
        expected: String,
    },
    #[error("audit entry {index} ({signer}) signed terms version {signed}, not the document's {expected}")]
    AuditVersion {
        index: usize,
        signer: String,
        signed: i32,
        expected: i32,
    },
    #[error("audit entry {index} is signed by {signer}, not the document's influencer {expected}")]
    AuditSigner {
        index: usize,
        signer: String,
        expected: String,
    },
    #[error("no signature of the {} in the audit", .0.label())]
    MissingSignature(Party),
    #[error("the seal's algorithm is {0:?}, not \"EdDSA\"")]
    UnsupportedAlgorithm(String),
    #[error("the seal's key {key_id} is not among the sealing keys given")]
    UnknownKey { key_id: String },
    #[error("the sealing key {key_id} is not an Ed25519 public key: {why}")]
    BadKey { key_id: String, why: String },
    #[error("the seal's signature does not match the record (key {key_id})")]
    BadSignature { key_id: String },
}

/// Checks a sealed record offline: the document's recomputed hash is the record's, every
/// audit entry signed that hash and the document's version (and both parties signed), the
/// seal's key is among `keys`, and its signature is valid over the record.
pub fn verify(json_bytes: &[u8], keys: &[JsonWebKey]) -> Result<Verified, VerifyError> {
    let malformed = |e: serde_json::Error| VerifyError::Malformed(e.to_string());
    let mut raw: Value = serde_json::from_slice(json_bytes).map_err(malformed)?;
    let received: Received = serde_json::from_value(raw.clone()).map_err(malformed)?;
    // The hash and the signature are over the document as the record holds it.
    let computed = sha256_hex(
        canonical_json(&received.document)
            .map_err(|e| VerifyError::Malformed(e.to_string()))?
            .as_bytes(),
    );
    if received.terms_sha256 != computed {
        return Err(VerifyError::HashMismatch {
            recorded: received.terms_sha256,
            computed,
        });
    }
    let document: TermsDocument =
        serde_json::from_value(received.document).map_err(|e| VerifyError::InvalidDocument(e.to_string()))?;
    let record = SealedRecord {
        document,
        terms_sha256: received.terms_sha256,
        audit: received.audit,
        seal: received.seal,
    };
    check_audit(&record.document, &computed, &record.audit)?;
    let seal = &record.seal;
    if seal.algorithm != ALGORITHM {
        return Err(VerifyError::UnsupportedAlgorithm(seal.algorithm.clone()));
    }
    let key = keys
        .iter()
        .find(|k| k.kid == seal.key_id)
        .ok_or_else(|| VerifyError::UnknownKey {
            key_id: seal.key_id.clone(),
        })?;
    let verifying_key = ed25519_key(key)?;
    let bad_signature = || VerifyError::BadSignature {
        key_id: seal.key_id.clone(),
    };
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(&seal.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad_signature)?;
    let signed = signed_bytes(&mut raw, seal).ok_or_else(bad_signature)?;
    verifying_key
        .verify_strict(&signed, &Signature::from_bytes(&signature))
        .map_err(|_| bad_signature())?;
    Ok(Verified { record })
}

/// A sealed record as received, its document not yet read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Received {
    document: Value,
    terms_sha256: String,
    audit: Vec<AuditEntry>,
    seal: Seal,
}

/// The bytes the seal signs, from the record as received: `seal` becomes `sealing`, without
/// the signature.
fn signed_bytes(raw: &mut Value, seal: &Seal) -> Option<Vec<u8>> {
    let obj = raw.as_object_mut()?;
    obj.remove("seal")?;
    let sealing = serde_json::to_value(Sealing {
        key_id: &seal.key_id,
        algorithm: &seal.algorithm,
        seal_time: seal.seal_micros,
    })
    .ok()?;
    obj.insert("sealing".into(), sealing);
    canonical_json(&*raw).ok().map(String::into_bytes)
}

/// Every entry signed `sha256` and the document's version; the influencer's entries are signed
/// by the document's influencer; both parties signed.
fn check_audit(document: &TermsDocument, sha256: &str, audit: &[AuditEntry]) -> Result<(), VerifyError> {
    for (index, entry) in audit.iter().enumerate() {
        if entry.terms_sha256 != sha256 {
            return Err(VerifyError::AuditHash {
                index,
                signer: entry.signer.clone(),
                signed: entry.terms_sha256.clone(),
                expected: sha256.to_owned(),
            });
        }
        if entry.terms_version != document.terms_version {
            return Err(VerifyError::AuditVersion {
                index,
                signer: entry.signer.clone(),
                signed: entry.terms_version,
                expected: document.terms_version,
            });
        }
        if entry.party == Party::Influencer && entry.signer != document.influencer {
            return Err(VerifyError::AuditSigner {
                index,
                signer: entry.signer.clone(),
                expected: document.influencer.clone(),
            });
        }
    }
    for party in [Party::Brand, Party::Influencer] {
        if !audit.iter().any(|e| e.party == party) {
            return Err(VerifyError::MissingSignature(party));
        }
    }
    Ok(())
}

fn ed25519_key(jwk: &JsonWebKey) -> Result<VerifyingKey, VerifyError> {
    let bad = |why: &str| VerifyError::BadKey {
        key_id: jwk.kid.clone(),
        why: why.to_owned(),
    };
    if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
        return Err(bad("not an OKP Ed25519 key"));
    }
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("x is not 32 bytes of base64url"))?;
    VerifyingKey::from_bytes(&x).map_err(|_| bad("x is not a point of the curve"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{audit, document};

    fn sealed(key: &SigningKey) -> Vec<u8> {
        let doc = document();
        let record = seal(&doc, audit(&doc), key, 1_773_000_000_123_456).unwrap();
        record.to_json().unwrap()
    }

    /// The record with `change` applied to its JSON.
    fn edited(json: &[u8], change: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(json).unwrap();
        change(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn a_sealed_record_verifies_offline() {
        let key = SigningKey::generate().unwrap();
        let json = sealed(&key);
        let verified = verify(&json, &[SigningKey::generate().unwrap().public_jwk(), key.public_jwk()]).unwrap();
        let doc = document();
        assert_eq!(verified.record.document, doc);
        assert_eq!(verified.record.terms_sha256, doc.sha256_hex().unwrap());
        assert_eq!(verified.record.seal.key_id, key.kid());
        assert_eq!(verified.record.seal.algorithm, "EdDSA");
        assert_eq!(verified.record.audit, audit(&doc));
        // Spacing is not part of what is signed.
        let compact = edited(&json, |_| {});
        assert!(verify(&compact, &[key.public_jwk()]).is_ok());
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""seal_time": "2026-03-08T20:00:00.123456Z""#), "{text}");
    }

    #[test]
    fn a_changed_amount_is_a_hash_mismatch_naming_both_hashes() {
        let key = SigningKey::generate().unwrap();
        let json = sealed(&key);
        let tampered = edited(&json, |v| {
            v["document"]["terms"]["compensation"]["cash"]["amount_minor"] = 2_500_000.into();
        });
        let recorded = document().sha256_hex().unwrap();
        match verify(&tampered, &[key.public_jwk()]) {
            Err(VerifyError::HashMismatch { recorded: r, computed }) => {
                assert_eq!(r, recorded);
                assert_ne!(computed, recorded);
                assert_eq!(computed.len(), 64);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_changed_audit_ip_breaks_the_signature() {
        let key = SigningKey::generate().unwrap();
        let json = sealed(&key);
        let tampered = edited(&json, |v| v["audit"][1]["ip_address"] = "192.0.2.1".into());
        assert_eq!(
            verify(&tampered, &[key.public_jwk()]),
            Err(VerifyError::BadSignature {
                key_id: key.kid().to_owned()
            })
        );
    }

    #[test]
    fn a_changed_signature_or_seal_time_does_not_verify() {
        let key = SigningKey::generate().unwrap();
        let json = sealed(&key);
        let bad = VerifyError::BadSignature {
            key_id: key.kid().to_owned(),
        };
        let other_signature = URL_SAFE_NO_PAD.encode(key.sign(b"something else"));
        let tampered = edited(&json, |v| v["seal"]["signature"] = other_signature.into());
        assert_eq!(verify(&tampered, &[key.public_jwk()]), Err(bad.clone()));
        let truncated = edited(&json, |v| v["seal"]["signature"] = "AAAA".into());
        assert_eq!(verify(&truncated, &[key.public_jwk()]), Err(bad.clone()));
        let later = edited(&json, |v| v["seal"]["seal_time"] = "2027-01-01T00:00:00.000000Z".into());
        assert_eq!(verify(&later, &[key.public_jwk()]), Err(bad));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let key = SigningKey::generate().unwrap();
        let json = sealed(&key);
        let other = SigningKey::generate().unwrap();
        assert_eq!(
            verify(&json, &[other.public_jwk()]),
            Err(VerifyError::UnknownKey {
                key_id: key.kid().to_owned()
            })
        );
        // A key listed under the seal's id that is not the key that sealed it.
        let mut impostor = other.public_jwk();
        impostor.kid = key.kid().to_owned();
        assert!(matches!(
            verify(&json, &[impostor]),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn an_audit_entry_for_another_hash_or_version_is_refused() {
        let key = SigningKey::generate().unwrap();
        let doc = document();
        let sha = doc.sha256_hex().unwrap();
        let mut entries = audit(&doc);
        entries[0].terms_sha256 = "0".repeat(64);
        let err = seal(&doc, entries, &key, 0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::FailedPrecondition);
        assert!(err.message().contains("audit entry 0"), "{}", err.message());

        let json = sealed(&key);
        let other = "f".repeat(64);
        let tampered = edited(&json, |v| v["audit"][0]["terms_sha256"] = other.clone().into());
        assert_eq!(
            verify(&tampered, &[key.public_jwk()]),
            Err(VerifyError::AuditHash {
                index: 0,
                signer: "users/ana@voltra.example".into(),
                signed: other,
                expected: sha,
            })
        );
        let older = edited(&json, |v| v["audit"][1]["terms_version"] = 1.into());
        assert!(matches!(
            verify(&older, &[key.public_jwk()]),
            Err(VerifyError::AuditVersion {
                index: 1,
                signed: 1,
                expected: 2,
                ..
            })
        ));
        let alone = edited(&json, |v| {
            v["audit"].as_array_mut().unwrap().remove(0);
        });
        assert_eq!(
            verify(&alone, &[key.public_jwk()]),
            Err(VerifyError::MissingSignature(Party::Brand))
        );
        let someone = edited(&json, |v| v["audit"][1]["signer"] = "influencers/someone-else".into());
        assert!(matches!(
            verify(&someone, &[key.public_jwk()]),
            Err(VerifyError::AuditSigner { index: 1, .. })
        ));
    }

    #[test]
    fn what_is_not_a_record_is_malformed() {
        let key = SigningKey::generate().unwrap();
        assert!(matches!(
            verify(b"[]", &[key.public_jwk()]),
            Err(VerifyError::Malformed(_))
        ));
        let json = sealed(&key);
        let extra = edited(&json, |v| v["note"] = "hi".into());
        assert!(matches!(
            verify(&extra, &[key.public_jwk()]),
            Err(VerifyError::Malformed(_))
        ));
        let algorithm = edited(&json, |v| v["seal"]["algorithm"] = "ES256".into());
        assert_eq!(
            verify(&algorithm, &[key.public_jwk()]),
            Err(VerifyError::UnsupportedAlgorithm("ES256".into()))
        );
    }

    #[test]
    fn errors_say_what_failed() {
        let e = VerifyError::HashMismatch {
            recorded: "aa".into(),
            computed: "bb".into(),
        };
        assert_eq!(e.to_string(), "the document's hash is bb, the record says aa");
        assert_eq!(
            VerifyError::MissingSignature(Party::Influencer).to_string(),
            "no signature of the influencer in the audit"
        );
    }
}
