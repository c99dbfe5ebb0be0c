//! Instances over a real store: attributes checked against the service's records, replacing
//! on re-registration, request ids, custom health, and DiscoverInstances' filters.

use std::collections::BTreeMap;

use super::*;
use crate::discovery::discover::{self, HealthFilter, Query};
use crate::discovery::namespaces::tests::{code, private};
use crate::discovery::records::{CustomHealthConfig, HealthStatus, OperationStatus};
use crate::discovery::services::tests::{dns, new};
use crate::vpc::testing::TestRegion;

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn attributes_are_checked_against_the_services_records() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    use RecordType::*;
    let a_srv =
        services::create(&r, &new("web", &ns.id, dns(RoutingPolicy::Multivalue, &[(A, 10), (Srv, 10)]))).await.unwrap();
    let refused: &[&[(&str, &str)]] = &[
        &[(PORT, "80")],
        &[(IPV4, "10.0.0.1")],
        &[(IPV4, "10.0.0.300"), (PORT, "80")],
        &[(IPV4, "10.0.0.1"), (PORT, "http")],
        &[(IPV4, "10.0.0.1"), (PORT, "80"), (INIT_HEALTH, "HEALTHY")],
        &[(IPV4, "10.0.0.1"), (PORT, "80"), (EC2_INSTANCE, "i-1")],
        &[(ALIAS, "lb.example")],
    ];
    for bad in refused {
        let e = register(&r, &a_srv.id, "i-1", &attrs(bad), None).await.unwrap_err();
        assert_eq!(code(e).0, "InvalidInput", "{bad:?}");
    }
    assert_eq!(code(register(&r, &a_srv.id, "bad id!", &attrs(&[]), None).await.unwrap_err()).0, "InvalidInput");
    assert_eq!(code(register(&r, "srv-nothere", "i-1", &attrs(&[]), None).await.unwrap_err()).0, "ServiceNotFound");
    let many: BTreeMap<String, String> = (0..31).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(code(register(&r, &a_srv.id, "i-1", &many, None).await.unwrap_err()).0, "InvalidInput");
    assert!(list(&r, &a_srv.id).unwrap().is_empty(), "nothing refused was registered");

    let op =
        register(&r, &a_srv.id, "i-1", &attrs(&[(IPV4, "10.0.0.1"), (PORT, "80"), ("az", "a")]), None).await.unwrap();
    assert_eq!((op.kind, op.status), (OperationType::RegisterInstance, OperationStatus::Success));
    assert_eq!(op.targets["INSTANCE"], "i-1");

    let cname = services::create(&r, &new("db", &ns.id, dns(RoutingPolicy::Weighted, &[(Cname, 10)]))).await.unwrap();
    assert_eq!(
        code(register(&r, &cname.id, "i-1", &attrs(&[(IPV4, "10.0.0.1")]), None).await.unwrap_err()).0,
        "InvalidInput"
    );
    register(&r, &cname.id, "i-1", &attrs(&[(CNAME, "db.example.com")]), None).await.unwrap();

    let alias = services::create(&r, &new("front", &ns.id, dns(RoutingPolicy::Weighted, &[(A, 10)]))).await.unwrap();
    let e =
        register(&r, &alias.id, "i-1", &attrs(&[(ALIAS, "lb.example"), (IPV4, "10.0.0.1")]), None).await.unwrap_err();
    assert_eq!(code(e).0, "InvalidInput", "an alias goes alone");
    register(&r, &alias.id, "i-1", &attrs(&[(ALIAS, "lb.example")]), None).await.unwrap();
}

#[tokio::test]
async fn registering_again_replaces_and_request_ids_replay() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    let web = services::create(&r, &new("web", &ns.id, dns(RoutingPolicy::Multivalue, &[(RecordType::A, 10)])))
        .await
        .unwrap();
    let first = register(&r, &web.id, "i-1", &attrs(&[(IPV4, "10.0.0.1")]), Some("req-1")).await.unwrap();
    let again = register(&r, &web.id, "i-1", &attrs(&[(IPV4, "10.0.0.1")]), Some("req-1")).await.unwrap();
    assert_eq!(again.id, first.id);
    let e = register(&r, &web.id, "i-2", &attrs(&[(IPV4, "10.0.0.2")]), Some("req-1")).await.unwrap_err();
    assert_eq!(code(e).0, "DuplicateRequest");
    register(&r, &web.id, "i-1", &attrs(&[(IPV4, "10.0.0.9")]), None).await.unwrap();
    let (_, i) = get(&r, &web.id, "i-1").unwrap();
    assert_eq!(i.record.attributes[IPV4], "10.0.0.9");
    assert_eq!(list(&r, &web.id).unwrap().len(), 1);
    assert_eq!(code(deregister(&r, &web.id, "i-2").await.unwrap_err()).0, "InstanceNotFound");
    let op = deregister(&r, &web.id, "i-1").await.unwrap();
    assert_eq!(op.kind, OperationType::DeregisterInstance);
    assert!(list(&r, &web.id).unwrap().is_empty());
}

#[tokio::test]
async fn custom_health_is_set_only_where_the_service_has_it() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    let mut checked = new("web", &ns.id, dns(RoutingPolicy::Multivalue, &[(RecordType::A, 10)]));
    checked.custom_health = Some(CustomHealthConfig { failure_threshold: Some(1) });
    let web = services::create(&r, &checked).await.unwrap();
    let plain = services::create(&r, &new("plain", &ns.id, None)).await.unwrap();
    register(&r, &web.id, "i-1", &attrs(&[(IPV4, "10.0.0.1")]), None).await.unwrap();
    register(&r, &web.id, "i-2", &attrs(&[(IPV4, "10.0.0.2"), (INIT_HEALTH, "UNHEALTHY")]), None).await.unwrap();
    register(&r, &plain.id, "i-1", &attrs(&[]), None).await.unwrap();
    let health = |s: &str, i: &str| get(&r, s, i).unwrap().1.record.health_status();
    assert_eq!((health(&web.id, "i-1"), health(&web.id, "i-2")), (HealthStatus::Healthy, HealthStatus::Unhealthy));
    assert_eq!(health(&plain.id, "i-1"), HealthStatus::Unknown);
    set_custom_health(&r, &web.id, "i-1", CustomHealth::Unhealthy).await.unwrap();
    assert_eq!(health(&web.id, "i-1"), HealthStatus::Unhealthy);
    // Registering again keeps the health it had.
    register(&r, &web.id, "i-1", &attrs(&[(IPV4, "10.0.0.1")]), None).await.unwrap();
    assert_eq!(health(&web.id, "i-1"), HealthStatus::Unhealthy);
    let e = set_custom_health(&r, &plain.id, "i-1", CustomHealth::Healthy).await.unwrap_err();
    assert_eq!(code(e).0, "CustomHealthNotFound");
    assert_eq!(
        code(set_custom_health(&r, &web.id, "i-9", CustomHealth::Healthy).await.unwrap_err()).0,
        "InstanceNotFound"
    );
}

#[tokio::test]
async fn discovery_filters_by_attributes_and_health() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    let mut checked = new("web", &ns.id, dns(RoutingPolicy::Multivalue, &[(RecordType::A, 10)]));
    checked.custom_health = Some(CustomHealthConfig { failure_threshold: None });
    let web = services::create(&r, &checked).await.unwrap();
    for (id, ip, az, health) in [
        ("i-1", "10.0.0.1", "a", "HEALTHY"),
        ("i-2", "10.0.0.2", "b", "HEALTHY"),
        ("i-3", "10.0.0.3", "a", "UNHEALTHY"),
    ] {
        register(&r, &web.id, id, &attrs(&[(IPV4, ip), ("az", az), (INIT_HEALTH, health)]), None).await.unwrap();
    }
    let none = BTreeMap::new();
    let run =
        |query: BTreeMap<String, String>, optional: BTreeMap<String, String>, health: HealthFilter, max: usize| {
            let q = Query {
                namespace: "Internal.App",
                service: "WEB",
                query: &query,
                optional: &optional,
                health,
                max_results: max,
            };
            let mut ids: Vec<String> =
                discover::discover(&r, &q).unwrap().instances.into_iter().map(|(i, _)| i.id).collect();
            ids.sort();
            ids
        };
    assert_eq!(run(none.clone(), none.clone(), HealthFilter::Healthy, 100), ["i-1", "i-2"]);
    assert_eq!(run(none.clone(), none.clone(), HealthFilter::Unhealthy, 100), ["i-3"]);
    assert_eq!(run(none.clone(), none.clone(), HealthFilter::All, 100), ["i-1", "i-2", "i-3"]);
    assert_eq!(run(attrs(&[("az", "a")]), none.clone(), HealthFilter::All, 100), ["i-1", "i-3"]);
    // Optional parameters narrow only when something matches them.
    assert_eq!(run(none.clone(), attrs(&[("az", "b")]), HealthFilter::All, 100), ["i-2"]);
    assert_eq!(run(none.clone(), attrs(&[("az", "z")]), HealthFilter::All, 100), ["i-1", "i-2", "i-3"]);
    assert_eq!(run(none.clone(), none.clone(), HealthFilter::All, 2).len(), 2);
    set_custom_health(&r, &web.id, "i-1", CustomHealth::Unhealthy).await.unwrap();
    set_custom_health(&r, &web.id, "i-2", CustomHealth::Unhealthy).await.unwrap();
    assert_eq!(run(none.clone(), none.clone(), HealthFilter::HealthyOrElseAll, 100), ["i-1", "i-2", "i-3"]);
    assert!(run(none.clone(), none.clone(), HealthFilter::Healthy, 100).is_empty());

    // The revision moves with registrations, not with health.
    let (_, before) = discover::revision(&r, "internal.app", "web").unwrap();
    set_custom_health(&r, &web.id, "i-1", CustomHealth::Healthy).await.unwrap();
    assert_eq!(discover::revision(&r, "internal.app", "web").unwrap().1, before);
    deregister(&r, &web.id, "i-3").await.unwrap();
    assert!(discover::revision(&r, "internal.app", "web").unwrap().1 > before);
    let e = discover::revision(&r, "nothere.app", "web").unwrap_err();
    assert_eq!(code(e).0, "NamespaceNotFound");
    assert_eq!(code(discover::revision(&r, "internal.app", "nothere").unwrap_err()).0, "ServiceNotFound");
}
