//! `chorus token`: mints a bearer token signed with a service's JWT secret, for operators and
//! benchmarks against services run outside `chorus up` (which prints its own dev token).

use std::time::Duration;

use chorus_kit::auth::Jwt;
use chorus_kit::config::Secret;

use crate::error::Result;

#[derive(clap::Args, Debug)]
pub(crate) struct TokenArgs {
    /// The services' signing secret.
    #[arg(long, env = "CHORUS_JWT_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long, default_value = "operator")]
    subject: String,
    #[arg(long, default_value = "demo")]
    tenant: String,
    #[arg(long, default_value = "admin")]
    role: String,
    /// Scopes, comma-separated; every scope when absent.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 24)]
    hours: u64,
}

pub(crate) fn run(args: TokenArgs) -> Result<()> {
    if args.secret.len() < 16 {
        return Err("the secret must have at least 16 characters".into());
    }
    let jwt = Jwt::new(&Secret::new(args.secret));
    let scopes: Vec<&str> = if args.scopes.is_empty() {
        crate::up::all_scopes()
    } else {
        args.scopes.iter().map(String::as_str).collect()
    };
    let token = jwt.mint(
        &args.subject,
        &args.tenant,
        &args.role,
        &scopes,
        Duration::from_secs(args.hours * 3600),
    )?;
    outln!("{token}");
    Ok(())
}
