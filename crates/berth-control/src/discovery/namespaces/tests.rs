//! Namespaces over a real store: names unique whatever their case, the VPC checked, request ids
//! replayed or refused, updates, and deletion only without services.

use super::*;
use crate::ControlError;
use crate::discovery::records::OperationStatus;
use crate::discovery::services::{self, NewService};
use crate::vpc::testing::TestRegion;

pub(crate) async fn private(r: &Region<'_>, name: &str) -> NamespaceRecord {
    let vpc = crate::vpc::defaults::ensure(r).await.unwrap().unwrap();
    let new = NewNamespace {
        name: name.into(),
        kind: NamespaceType::DnsPrivate,
        description: None,
        vpc: Some(vpc.id),
        soa_ttl: None,
        tags: vec![],
        creator_request_id: None,
    };
    let op = create(r, &new).await.unwrap();
    get(r, &op.targets["NAMESPACE"]).unwrap().record
}

pub(crate) fn code(e: ControlError) -> (&'static str, String) {
    match e {
        ControlError::Discovery(d) => (d.code(), d.to_string()),
        other => panic!("{other:?}"),
    }
}

fn http(name: &str, token: Option<&str>) -> NewNamespace {
    NewNamespace {
        name: name.into(),
        kind: NamespaceType::Http,
        description: Some("d".into()),
        vpc: None,
        soa_ttl: None,
        tags: vec![],
        creator_request_id: token.map(str::to_string),
    }
}

#[tokio::test]
async fn private_namespaces_are_zones_in_an_existing_vpc_with_unique_names() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    assert!(ns.id.starts_with("ns-") && ns.hosted_zone_id.as_deref().unwrap().starts_with('Z'));
    assert_eq!(ns.soa_ttl, Some(DEFAULT_SOA_TTL));
    assert_eq!(by_name(&r, "INTERNAL.app.").unwrap().record.id, ns.id);

    let mut again = http("Internal.App", None);
    let e = create(&r, &again).await.unwrap_err();
    assert_eq!(
        code(e),
        ("NamespaceAlreadyExists", format!("Namespace with name Internal.App already exists: {}", ns.id))
    );
    again.kind = NamespaceType::DnsPrivate;
    again.name = "other.app".into();
    again.vpc = Some("vpc-0123456789abcdef0".into());
    assert_eq!(code(create(&r, &again).await.unwrap_err()).0, "InvalidInput", "a VPC that does not exist");
    again.vpc = None;
    assert_eq!(code(create(&r, &again).await.unwrap_err()).0, "InvalidInput", "no VPC");
    again.vpc = Some(ns.vpc.clone().unwrap());
    for bad in ["-bad.app", "a..b", "sp ace.app", &"x".repeat(64)] {
        again.name = bad.into();
        assert_eq!(code(create(&r, &again).await.unwrap_err()).0, "InvalidInput", "{bad}");
    }
    assert_eq!(list(&r).unwrap().len(), 1, "nothing refused was made");
}

#[tokio::test]
async fn creator_request_ids_replay_the_first_answer_or_are_duplicates() {
    let t = TestRegion::new();
    let r = t.region();
    let first = create(&r, &http("shop", Some("token-1"))).await.unwrap();
    assert_eq!(first.status, OperationStatus::Success);
    let replay = create(&r, &http("shop", Some("token-1"))).await.unwrap();
    assert_eq!(replay.id, first.id, "a retry answers the same operation");
    let e = create(&r, &http("other", Some("token-1"))).await.unwrap_err();
    assert_eq!(code(e).0, "DuplicateRequest");
    assert_eq!(list(&r).unwrap().len(), 1);
    assert_eq!(code(create(&r, &http("arn:aws:x", None)).await.unwrap_err()).0, "InvalidInput");
}

#[tokio::test]
async fn updates_and_deletes_change_what_they_may() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    let change = NamespaceChange { description: Some("new".into()), soa_ttl: Some(60), updater_request_id: None };
    let op = update(&r, &ns.arn, NamespaceType::DnsPrivate, &change).await.unwrap();
    assert_eq!(op.kind, OperationType::UpdateNamespace);
    let now = get(&r, &ns.id).unwrap().record;
    assert_eq!((now.description.as_deref(), now.soa_ttl), (Some("new"), Some(60)));
    assert_eq!(code(update(&r, &ns.id, NamespaceType::Http, &change).await.unwrap_err()).0, "InvalidInput");

    let svc = NewService {
        name: "web".into(),
        namespace: ns.id.clone(),
        description: None,
        dns: None,
        http_only: false,
        custom_health: None,
        tags: vec![],
        creator_request_id: None,
        connect: None,
    };
    let svc = services::create(&r, &svc).await.unwrap();
    assert_eq!(service_count(&r, &ns.id).unwrap(), 1);
    assert_eq!(code(delete(&r, &ns.id).await.unwrap_err()).0, "ResourceInUse");
    services::delete(&r, &svc.id).await.unwrap();
    let op = delete(&r, &ns.id).await.unwrap();
    assert_eq!(op.kind, OperationType::DeleteNamespace);
    assert_eq!(code(get(&r, &ns.id).unwrap_err()).0, "NamespaceNotFound");
    assert_eq!(operations::get(&r, &op.id).unwrap().status, OperationStatus::Success, "its operation outlives it");
    // The name is free again.
    private(&r, "internal.app").await;
}
