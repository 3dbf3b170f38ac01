//! `chorus token`: mints a bearer token with the issuer's signing key, for operators and
//! benchmarks (`chorus up` writes its own dev token). Only whoever holds the issuer's key can;
//! services and apps get theirs from the identity service (IssueToken).

use std::path::PathBuf;
use std::time::Duration;

use chorus_kit::auth::{DEFAULT_MAX_LIFETIME, Grant, Issuer, SigningKey};

use crate::error::Result;

#[derive(clap::Args, Debug)]
pub(crate) struct TokenArgs {
    /// The issuer's Ed25519 key (PKCS#8 PEM); default: `signing-key.pem` in the data directory,
    /// as `chorus up` makes it.
    #[arg(long, env = "CHORUS_SIGNING_KEY_FILE")]
    signing_key: Option<PathBuf>,
    #[arg(long, default_value = "operator")]
    subject: String,
    #[arg(long, default_value = "demo")]
    tenant: String,
    #[arg(long, default_value = "admin")]
    role: String,
    /// Scopes, comma-separated; every scope when absent.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// Lifetime in hours, at most 24 (the longest a service accepts by default).
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// Print the key's public JWKS (for a service's CHORUS_JWKS) instead of a token.
    #[arg(long)]
    print_jwks: bool,
}

pub(crate) fn run(args: TokenArgs, data_dir: &std::path::Path) -> Result<()> {
    let path = args.signing_key.unwrap_or_else(|| data_dir.join("signing-key.pem"));
    let pem = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read the signing key {}: {e} (pass --signing-key)",
            path.display()
        )
    })?;
    let key = SigningKey::from_pem(&pem)?;
    if args.print_jwks {
        outln!("{}", chorus_kit::auth::verify::jwks_json(&[key.public_jwk()]));
        return Ok(());
    }
    let life = Duration::from_secs(args.hours * 3600);
    if life > DEFAULT_MAX_LIFETIME || life.is_zero() {
        return Err("--hours must be from 1 to 24: services refuse longer-lived tokens".into());
    }
    let issuer = Issuer::new(key, DEFAULT_MAX_LIFETIME);
    let scopes: Vec<String> = if args.scopes.is_empty() {
        crate::up::all_scopes().into_iter().map(str::to_owned).collect()
    } else {
        args.scopes
    };
    let grant = Grant {
        subject: args.subject,
        tenant: args.tenant,
        role: args.role,
        scopes,
    };
    let (token, _) = issuer.mint(&grant, life)?;
    outln!("{token}");
    Ok(())
}
