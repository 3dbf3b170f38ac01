//! Random token and invitation requests to the issuer's validators: none panics, and each
//! error is INVALID_ARGUMENT whose violations name fields of the message
//! (`chorus_testkit::props`). The validators are pure: no server, no database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_identity::domain::*;
use chorus_proto::identity::*;
use chorus_testkit::props::*;
use proptest::prelude::*;

const SCOPES: &[&str] = &["offers.read", "offers.sign", "registry.write", "a b"];

fn grant() -> impl Strategy<Value = Option<issue_token_request::Grant>> {
    use issue_token_request::Grant;
    let credentials = (text_or(&["matching", "cli"]), text_or(&["s3cret"])).prop_map(|(client_id, client_secret)| {
        Grant::ClientCredentials(ClientCredentials {
            client_id,
            client_secret,
        })
    });
    proptest::option::of(prop_oneof![
        credentials,
        text().prop_map(Grant::InvitationCode),
        text().prop_map(Grant::RefreshToken),
    ])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn token_requests(grant in grant(), scopes in list(text_or(SCOPES), MAX_SCOPES)) {
        let r = IssueTokenRequest { grant, scopes };
        let fields = [
            "grant",
            "client_credentials.client_id",
            "client_credentials.client_secret",
            "invitation_code",
            "refresh_token",
            "scopes",
            "scopes[]",
        ];
        assert_named(&check_issue_token(&r), &fields)?;
    }

    #[test]
    fn invitations(
        influencer in resource_name("influencers"),
        scopes in list(text_or(SCOPES), MAX_INVITATION_SCOPES),
        ttl in proptest::option::of((any::<i64>(), any::<i32>())),
    ) {
        let r = CreateInvitationRequest {
            influencer,
            scopes,
            ttl: ttl.map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
        };
        let allowed = vec!["offers.read".to_owned(), "offers.sign".to_owned()];
        let result = check_invitation(&r, &allowed);
        assert_named(&result, &["influencer", "scopes", "scopes[]", "ttl"])?;
        if let Ok(ttl) = result {
            prop_assert!(!ttl.is_zero() && ttl <= MAX_INVITATION_TTL);
        }
    }
}
