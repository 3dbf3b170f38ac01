//! Who owns the catalogue: curators (`registry.curate`) and each influencer for their own
//! profile (`registry.self`) write it; a brand's app (`registry.read`, `registry.write`) reads
//! it and records evidence, but cannot create over, rename, block or unblock anyone. Contact
//! details need `registry.contacts` and the person's consent on every path that returns a
//! profile. Request ids are per tenant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chorus_proto::registry::*;
use chorus_proto::types::Platform;
use common::*;
use prost_types::FieldMask;

const EMAIL: &str = "maya@example.com";

fn with_contact(mut inf: Influencer, contact_allowed: bool) -> Influencer {
    inf.contact = Some(Contact {
        email: EMAIL.into(),
        phone: "+1 512 555 0100".into(),
    });
    inf.consent = Some(Consent {
        contact_allowed,
        data_processing_allowed: true,
        consent_time: None,
    });
    inf
}

fn update(inf: Influencer, paths: &[&str]) -> UpdateInfluencerRequest {
    UpdateInfluencerRequest {
        influencer: Some(inf),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
        request_id: String::new(),
    }
}

async fn get(client: &mut Client, name: &str) -> Influencer {
    client
        .get_influencer(GetInfluencerRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap()
}

/// Every path that returns a profile, as `client` sees `name`: Get, BatchGet, List, Export.
async fn every_view(client: &mut Client, name: &str) -> Vec<Influencer> {
    let mut seen = vec![get(client, name).await];
    let batch = client
        .batch_get_influencers(BatchGetInfluencersRequest {
            names: vec![name.into()],
        })
        .await
        .unwrap()
        .into_inner();
    seen.extend(batch.influencers);
    seen.extend(all(client).await.into_iter().filter(|i| i.name == name));
    let mut export = client
        .export_influencers(ExportInfluencersRequest { page_size: 10 })
        .await
        .unwrap()
        .into_inner();
    while let Some(page) = export.message().await.unwrap() {
        seen.extend(page.influencers.into_iter().filter(|i| i.name == name));
    }
    assert_eq!(seen.len(), 4, "{name} on every path");
    seen
}

on_both_backends! { spawn_app;
    a_brand_app_reads_but_cannot_overwrite_the_catalogue => |app: TestApp| async move {
        let mut curator = app.client().await;
        let maya = create(&mut curator, influencer("Maya", "maya.bakes")).await;
        let mut brand_b = app
            .client_with(Some(app.token_of("brand-b", &["registry.read", "registry.write"])))
            .await;

        let renamed = Influencer { display_name: "Hijacked".into(), ..maya.clone() };
        denied("rename", brand_b.update_influencer(update(renamed.clone(), &["display_name"])).await, "registry.curate");
        denied("full replace", brand_b.update_influencer(update(renamed, &[])).await, "registry.curate");
        denied(
            "create over",
            brand_b.create_influencer(CreateInfluencerRequest { influencer: Some(influencer("Other", "maya.bakes")), request_id: String::new() }).await,
            "registry.curate",
        );
        let import = brand_b
            .import_influencers(tokio_stream::iter(vec![ImportInfluencersRequest { influencers: vec![influencer("Other", "maya.bakes")] }]))
            .await;
        denied("import over", import, "registry.curate");

        // Blocked by a curator: the brand cannot re-activate the profile.
        let blocked = Influencer { status: InfluencerStatus::Blocked as i32, ..maya.clone() };
        curator.update_influencer(update(blocked, &["status"])).await.unwrap();
        let active = Influencer { status: InfluencerStatus::Active as i32, ..maya.clone() };
        denied("unblock", brand_b.update_influencer(update(active, &["status"])).await, "registry.curate");

        let now = get(&mut brand_b, &maya.name).await;
        assert_eq!(now.display_name, "Maya");
        assert_eq!(now.status, InfluencerStatus::Blocked as i32);
        // What registry.write still means: evidence from the brand's integrations.
        let recorded = record(&mut brand_b, vec![snapshot(Platform::Instagram, "maya.bakes", 4_000, 300)]).await;
        assert_eq!(recorded.recorded_count, 1, "{recorded:?}");
    };

    an_influencer_changes_only_what_is_theirs => |app: TestApp| async move {
        let mut curator = app.client().await;
        let maya = create(&mut curator, with_contact(influencer("Maya", "maya.bakes"), false)).await;
        let tom = create(&mut curator, influencer("Tom", "tom.bakes")).await;
        let blocked = Influencer { status: InfluencerStatus::Blocked as i32, ..maya.clone() };
        curator.update_influencer(update(blocked, &["status"])).await.unwrap();
        let mut me = app.client_with(Some(app.influencer_token(&maya.name, &["registry.self"]))).await;

        // Their own profile, whole: contact details included, consent or not.
        let own = get(&mut me, &maya.name).await;
        assert_eq!(own.contact.as_ref().map(|c| c.email.as_str()), Some(EMAIL));

        let mut patch = with_contact(influencer("Maya C.", "ignored"), true);
        patch.name = maya.name.clone();
        patch.status = InfluencerStatus::Active as i32;
        // An empty mask is every field a person may change: not their accounts, not the status.
        let changed = me.update_influencer(update(patch.clone(), &[])).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(changed.display_name, "Maya C.");
        assert!(changed.consent.is_some_and(|c| c.contact_allowed));
        assert_eq!(changed.status, InfluencerStatus::Blocked as i32, "still blocked");
        assert_eq!(changed.accounts[0].handle, "maya.bakes");

        denied("unblock self", me.update_influencer(update(patch.clone(), &["status"])).await, "registry.curate");
        denied("accounts", me.update_influencer(update(patch.clone(), &["display_name", "accounts"])).await, "registry.curate");
        let theirs = Influencer { name: tom.name.clone(), ..patch };
        denied("someone else's", me.update_influencer(update(theirs, &["display_name"])).await, "registry.curate");
        denied("read someone else's", me.get_influencer(GetInfluencerRequest { name: tom.name.clone() }).await, "registry.read");
        denied("list", me.list_influencers(ListInfluencersRequest::default()).await, "registry.read");
        assert_eq!(get(&mut curator, &tom.name).await.display_name, "Tom");
    };

    contact_details_need_the_scope_and_the_persons_consent => |app: TestApp| async move {
        let mut curator = app.client_with(Some(app.token(&["registry.read", "registry.curate"]))).await;
        let created = curator
            .create_influencer(CreateInfluencerRequest { influencer: Some(with_contact(influencer("Yes", "yes.please"), true)), request_id: String::new() })
            .await
            .unwrap()
            .into_inner()
            .influencer
            .unwrap();
        assert_eq!(created.contact, None, "a curator without registry.contacts");
        let no = create(&mut curator, with_contact(influencer("No", "no.thanks"), false)).await;
        let renamed = Influencer { display_name: "Yes!".into(), ..created.clone() };
        let updated = curator.update_influencer(update(renamed, &["display_name"])).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(updated.contact, None, "the update's answer too");

        let mut reader = app.client_with(Some(app.token_of("brand-b", &["registry.read"]))).await;
        let mut contacts = app.client_with(Some(app.token_of("brand-b", &["registry.read", "registry.contacts"]))).await;
        for inf in every_view(&mut reader, &created.name).await.into_iter().chain(every_view(&mut reader, &no.name).await) {
            assert_eq!(inf.contact, None, "registry.read alone: {inf:?}");
        }
        for inf in every_view(&mut contacts, &created.name).await {
            assert_eq!(inf.contact.as_ref().map(|c| c.email.as_str()), Some(EMAIL), "consented: {inf:?}");
        }
        for inf in every_view(&mut contacts, &no.name).await {
            assert_eq!(inf.contact, None, "no consent: {inf:?}");
        }
    };

    create_request_ids_are_per_tenant => |app: TestApp| async move {
        let scopes = ["registry.read", "registry.curate"];
        let mut a = app.client_with(Some(app.token_of("brand-a", &scopes))).await;
        let mut b = app.client_with(Some(app.token_of("brand-b", &scopes))).await;
        let request = |name: &str, handle: &str| CreateInfluencerRequest {
            influencer: Some(influencer(name, handle)),
            request_id: "same-id".into(),
        };
        let from_a = a.create_influencer(request("Ann", "ann")).await.unwrap().into_inner().influencer.unwrap();
        // The same id from another tenant is another request: it runs, it is not a conflict
        // with (nor a replay of) brand-a's.
        let from_b = b.create_influencer(request("Bea", "bea")).await.unwrap().into_inner().influencer.unwrap();
        assert_ne!(from_a.name, from_b.name);
        assert_eq!(from_b.display_name, "Bea");
        let again = a.create_influencer(request("Ann", "ann")).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(again.name, from_a.name, "brand-a's retry gets brand-a's answer");
        assert_eq!(count_named(&mut a, &["Ann", "Bea"]).await, 2);
    };
}

async fn count_named(client: &mut Client, names: &[&str]) -> usize {
    all(client)
        .await
        .iter()
        .filter(|i| names.contains(&i.display_name.as_str()))
        .count()
}
