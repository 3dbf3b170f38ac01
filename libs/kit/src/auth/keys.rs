//! The issuer's key and the tokens it signs. Ed25519 (JWS `EdDSA`): small keys, fast
//! verification, and no parameter choices to get wrong. A key is kept as PKCS#8 PEM; its `kid`
//! is the RFC 7638 thumbprint of its public JWK, so the same key always has the same name.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chorus_proto::identity::JsonWebKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

use super::{AUDIENCE, Claims, Grant, ISSUER};
use crate::clock::Clock;
use crate::config::Secret;
use crate::error::{Error, ErrorCode};

/// PKCS#8 v1 DER of an Ed25519 private key is this prefix and the 32-byte seed (RFC 8410).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PEM_LABEL: &str = "PRIVATE KEY";

/// An Ed25519 signing key.
#[derive(Clone)]
pub struct SigningKey {
    seed: Secret<[u8; 32]>,
    public: [u8; 32],
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a required key from the environment: `{prefix}_FILE` (the path of a PKCS#8 PEM
    /// file) or `{prefix}` (the PEM itself). Every problem goes into `r`, named by the file
    /// setting, with `purpose` saying what the key is for.
    pub fn from_settings(r: &mut crate::config::Reader<'_>, prefix: &str, purpose: &str) -> Option<SigningKey> {
        let file_key = format!("{prefix}_FILE");
        let pem = r.secret(prefix).map(|pem| pem.expose().clone());
        if pem.is_none() && r.optional(&file_key).is_none() {
            r.check(true, &file_key, format!("required (or {prefix}): {purpose}"));
        }
        pem.and_then(|pem| match SigningKey::from_pem(&pem) {
            Ok(k) => Some(k),
            Err(e) => {
                let why = e
                    .violations()
                    .first()
                    .map_or_else(|| e.message().to_owned(), |v| v.description.clone());
                r.check(true, &file_key, why);
                None
            }
        })
    }

    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
        Ok(SigningKey::from_seed(seed))
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        SigningKey {
            seed: Secret::new(seed),
            kid: thumbprint(&public),
            public,
        }
    }

    /// Reads a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----") holding an Ed25519 key.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::invalid_field("signing key", why.to_owned());
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = STANDARD.decode(body).map_err(|_| bad("not PEM"))?;
        if der.len() != 48 || der[..16] != PKCS8_PREFIX {
            return Err(bad("not a PKCS#8 Ed25519 private key"));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&der[16..]);
        Ok(SigningKey::from_seed(seed))
    }

    /// The key as PKCS#8 PEM, for a file only its owner reads.
    pub fn to_pem(&self) -> String {
        let body = STANDARD.encode(self.der());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN {PEM_LABEL}-----\n{}\n-----END {PEM_LABEL}-----\n",
            lines.join("\n")
        )
    }

    fn der(&self) -> Vec<u8> {
        [PKCS8_PREFIX.as_slice(), self.seed.expose().as_slice()].concat()
    }

    /// The key as jsonwebtoken signs with it.
    pub(crate) fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_ed_der(&self.der())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as a JWKS lists it.
    pub fn public_jwk(&self) -> JsonWebKey {
        public_jwk(&self.public)
    }

    /// The Ed25519 signature (RFC 8032, PureEdDSA) of `bytes`, for what is not a token: a
    /// contract's seal.
    pub fn sign(&self, bytes: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        ed25519_dalek::SigningKey::from_bytes(self.seed.expose())
            .sign(bytes)
            .to_bytes()
    }
}

/// The JWK of an Ed25519 public key.
pub fn public_jwk(public: &[u8; 32]) -> JsonWebKey {
    JsonWebKey {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: URL_SAFE_NO_PAD.encode(public),
        kid: thumbprint(public),
        alg: "EdDSA".into(),
        r#use: "sig".into(),
    }
}

/// RFC 7638: SHA-256 of the required members in lexical order, base64url.
fn thumbprint(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Signs tokens: the identity service holds one; `chorus up` one for its dev token.
#[derive(Debug, Clone)]
pub struct Issuer {
    key: SigningKey,
    /// Keys no longer signing whose tokens may still be alive; published, never used.
    retired: Vec<JsonWebKey>,
    max_lifetime: Duration,
    clock: Clock,
}

impl Issuer {
    /// An issuer signing with `key`, never for longer than `max_lifetime`. Token times come
    /// from the system clock: a token's life is security, not business time.
    pub fn new(key: SigningKey, max_lifetime: Duration) -> Self {
        Issuer {
            key,
            retired: Vec::new(),
            max_lifetime,
            clock: Clock::system(),
        }
    }

    /// Also publishes the public keys of retired signing keys.
    pub fn with_retired(mut self, retired: Vec<JsonWebKey>) -> Self {
        self.retired = retired;
        self
    }

    /// Stamps tokens with `clock`'s time (tests make tokens that are already expired).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// A token for `grant` valid `ttl` (at most the maximum lifetime); with how long it lives.
    pub fn mint(&self, grant: &Grant, ttl: Duration) -> Result<(String, Duration), Error> {
        let ttl = ttl.min(self.max_lifetime);
        let now = u64::try_from(self.clock.now_micros() / 1_000_000).unwrap_or_default();
        let claims = Claims {
            sub: grant.subject.clone(),
            tenant: grant.tenant.clone(),
            role: grant.role.clone(),
            scope: grant.scopes.join(" "),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
            jti: uuid::Uuid::now_v7().simple().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key.encoding_key())
            .map_err(|e| Error::internal("sign token", e))?;
        Ok((token, ttl))
    }

    /// The public keys to verify this issuer's tokens with.
    pub fn jwks(&self) -> Vec<JsonWebKey> {
        std::iter::once(self.key.public_jwk())
            .chain(self.retired.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_pem_and_keeps_its_kid() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.public_jwk(), key.public_jwk());
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
        assert!(!format!("{key:?}").contains(&pem[28..40]), "the key never prints");
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 public key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let public: [u8; 32] = x.try_into().unwrap();
        assert_eq!(thumbprint(&public), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        // And RFC 8032's test key 1 gives that public key from its seed.
        let seed: [u8; 32] = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        assert_eq!(SigningKey::from_seed(seed).public, public);
    }

    #[test]
    fn sign_gives_the_rfc_8032_signature() {
        // RFC 8032 section 7.1, test 1: the empty message under the key above.
        let key = SigningKey::from_seed(hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
        let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                        5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        let signature: String = key.sign(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(signature, expected);
    }

    fn hex(s: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    #[test]
    fn tokens_never_outlive_the_maximum() {
        let issuer = Issuer::new(SigningKey::generate().unwrap(), Duration::from_secs(600));
        let grant = Grant {
            subject: "s".into(),
            tenant: "t".into(),
            role: "brand".into(),
            scopes: vec!["a".into()],
        };
        let (_, ttl) = issuer.mint(&grant, Duration::from_secs(86_400)).unwrap();
        assert_eq!(ttl, Duration::from_secs(600));
    }
}
