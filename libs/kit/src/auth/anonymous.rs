//! Which methods answer without a token. The protos say it, beside each method
//! (`option (chorus.type.v1.allow_anonymous) = true`, `proto/chorus/type/v1/options.proto`),
//! and this reads it from the descriptor set compiled into `chorus-proto`, so the services'
//! authentication and the gateway's OpenAPI document (`security: []`) cannot disagree.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, Value};

/// The full name of the option.
const OPTION: &str = "chorus.type.v1.allow_anonymous";

/// Every anonymous method's gRPC path, `/package.Service/Method`.
static ANONYMOUS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    match DescriptorPool::decode(chorus_proto::FILE_DESCRIPTOR_SET) {
        Ok(pool) => anonymous_in(&pool),
        Err(e) => {
            // Unreachable with the compiled set; if it were, every method would need a token.
            tracing::error!(error = %e, "the descriptor set does not decode; no method is anonymous");
            BTreeSet::new()
        }
    }
});

/// Whether the method at `path` (`/package.Service/Method`) answers without a token.
pub fn allows_anonymous(path: &str) -> bool {
    ANONYMOUS.contains(path)
}

/// The anonymous methods of `pool`, as gRPC paths.
pub fn anonymous_in(pool: &DescriptorPool) -> BTreeSet<String> {
    let Some(option) = pool.get_extension_by_name(OPTION) else {
        return BTreeSet::new();
    };
    pool.services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| {
            let options = m.options();
            options.has_extension(&option) && matches!(options.get_extension(&option).as_ref(), Value::Bool(true))
        })
        .map(|m| format!("/{}/{}", m.parent_service().full_name(), m.name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_endpoint_and_the_public_keys_are_the_only_anonymous_methods() {
        let all: Vec<&str> = ANONYMOUS.iter().map(String::as_str).collect();
        assert_eq!(
            all,
            [
                "/chorus.contracts.v1.ContractsService/GetSealingKeys",
                "/chorus.identity.v1.IdentityService/GetJwks",
                "/chorus.identity.v1.IdentityService/IssueToken",
            ]
        );
        assert!(allows_anonymous("/chorus.identity.v1.IdentityService/GetJwks"));
        // The whole path counts: a method of the same name elsewhere needs a token.
        assert!(!allows_anonymous("/chorus.registry.v1.RegistryService/GetJwks"));
        assert!(!allows_anonymous("GetJwks"));
    }
}
