//! The operator's policy for partner traffic, from one TOML file (`CHORUS_GATEWAY_CONFIG`):
//! rate-limit plans, each tenant's plan, and each tenant's allowed browser origins.
//!
//! ```toml
//! default_plan = "standard"
//!
//! [plans.standard]
//! key = { rate = 10.0, burst = 20 }      # per API key (or per token subject)
//! tenant = { rate = 50.0, burst = 100 }  # per tenant, all its keys together
//!
//! [tenants.brand-a]
//! plan = "standard"
//! cors_origins = ["https://app.brand-a.example"]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// A sustained rate (requests per second) and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub rate: f64,
    pub burst: u32,
}

/// What one plan allows a key and a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub key: Limit,
    pub tenant: Limit,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantPolicy {
    plan: Option<String>,
    #[serde(default)]
    cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default_plan: Option<String>,
    #[serde(default)]
    plans: BTreeMap<String, Plan>,
    #[serde(default)]
    tenants: BTreeMap<String, TenantPolicy>,
}

/// The plan when no file names one: generous enough for an app, small enough to stop a loop.
pub const BUILT_IN: Plan = Plan {
    key: Limit { rate: 10.0, burst: 20 },
    tenant: Limit { rate: 50.0, burst: 100 },
};

/// The policy, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    default_plan: Plan,
    tenant_plans: BTreeMap<String, Plan>,
    origins: BTreeMap<String, BTreeSet<String>>,
    /// Every origin some tenant allows: what a preflight, which carries no credentials, is
    /// answered for.
    any_origin: BTreeSet<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_plan: BUILT_IN,
            tenant_plans: BTreeMap::new(),
            origins: BTreeMap::new(),
            any_origin: BTreeSet::new(),
        }
    }
}

impl Policy {
    /// Parses the file, naming what is wrong.
    pub fn parse(toml_text: &str) -> Result<Policy, String> {
        let file: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        for (name, plan) in &file.plans {
            for (which, limit) in [("key", plan.key), ("tenant", plan.tenant)] {
                if !(limit.rate.is_finite() && limit.rate > 0.0) || limit.burst == 0 {
                    return Err(format!(
                        "plans.{name}.{which}: rate must be above 0 and burst at least 1"
                    ));
                }
            }
        }
        let plan = |name: &str, at: &str| {
            file.plans
                .get(name)
                .copied()
                .ok_or_else(|| format!("{at}: no plan {name:?} under [plans]"))
        };
        let default_plan = match &file.default_plan {
            Some(name) => plan(name, "default_plan")?,
            None => BUILT_IN,
        };
        let mut policy = Policy {
            default_plan,
            ..Policy::default()
        };
        for (tenant, t) in &file.tenants {
            if let Some(name) = &t.plan {
                policy
                    .tenant_plans
                    .insert(tenant.clone(), plan(name, &format!("tenants.{tenant}.plan"))?);
            }
            for origin in &t.cors_origins {
                if !is_origin(origin) {
                    return Err(format!(
                        "tenants.{tenant}.cors_origins: {origin:?} is not an origin (scheme://host[:port], no path)"
                    ));
                }
                policy.any_origin.insert(origin.clone());
            }
            policy
                .origins
                .insert(tenant.clone(), t.cors_origins.iter().cloned().collect());
        }
        Ok(policy)
    }

    /// The plan of `tenant`: its own, else the default.
    pub fn plan(&self, tenant: &str) -> Plan {
        self.tenant_plans.get(tenant).copied().unwrap_or(self.default_plan)
    }

    /// Whether `tenant` lets browser pages of `origin` read its answers.
    pub fn allows(&self, tenant: &str, origin: &str) -> bool {
        self.origins.get(tenant).is_some_and(|o| o.contains(origin))
    }

    /// Whether any tenant allows `origin`.
    pub fn allows_any(&self, origin: &str) -> bool {
        self.any_origin.contains(origin)
    }
}

/// `https://app.example` or `http://localhost:3000`: what browsers send as `Origin`.
fn is_origin(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.origin().ascii_serialization() == s
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn plans_tenants_and_origins_are_read_and_checked() {
        let policy = Policy::parse(
            r#"
            default_plan = "small"
            [plans.small]
            key = { rate = 1.0, burst = 2 }
            tenant = { rate = 2.0, burst = 4 }
            [plans.big]
            key = { rate = 100.0, burst = 200 }
            tenant = { rate = 500.0, burst = 1000 }
            [tenants.brand-a]
            plan = "big"
            cors_origins = ["https://app.brand-a.example", "http://localhost:3000"]
            "#,
        )
        .unwrap();
        assert_eq!(policy.plan("brand-a").key.burst, 200);
        assert_eq!(policy.plan("brand-b").key.burst, 2);
        assert!(policy.allows("brand-a", "https://app.brand-a.example"));
        assert!(!policy.allows("brand-b", "https://app.brand-a.example"));
        assert!(policy.allows_any("http://localhost:3000"));
        assert!(!policy.allows_any("https://evil.example"));

        for (bad, why) in [
            ("default_plan = \"none\"", "no plan"),
            (
                "[plans.p]\nkey = { rate = 0.0, burst = 1 }\ntenant = { rate = 1.0, burst = 1 }",
                "rate",
            ),
            (
                "[tenants.t]\ncors_origins = [\"https://a.example/path\"]",
                "not an origin",
            ),
            ("[tenants.t]\nplan = \"gold\"", "no plan"),
            ("surprise = 1", "unknown field"),
        ] {
            let err = Policy::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
