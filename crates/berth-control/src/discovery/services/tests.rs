//! Services over a real store: Cloud Map's record rules, names per namespace, updates of
//! TTLs, and deletion only without instances.

use super::*;
use crate::discovery::instances;
use crate::discovery::namespaces::tests::{code, private};
use crate::vpc::testing::TestRegion;

pub(crate) fn dns(routing: RoutingPolicy, kinds: &[(RecordType, i64)]) -> Option<DnsConfig> {
    Some(DnsConfig {
        routing_policy: routing,
        records: kinds.iter().map(|(k, t)| DnsRecord { kind: *k, ttl: *t }).collect(),
    })
}

pub(crate) fn new(name: &str, namespace: &str, dns: Option<DnsConfig>) -> NewService {
    NewService {
        name: name.into(),
        namespace: namespace.into(),
        description: None,
        dns,
        http_only: false,
        custom_health: None,
        tags: vec![],
        creator_request_id: None,
        connect: None,
    }
}

#[tokio::test]
async fn records_follow_cloud_maps_rules() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    use RecordType::*;
    let refused = [
        dns(RoutingPolicy::Multivalue, &[]),
        dns(RoutingPolicy::Multivalue, &[(A, 10), (A, 20)]),
        dns(RoutingPolicy::Multivalue, &[(Cname, 10)]),
        dns(RoutingPolicy::Weighted, &[(Cname, 10), (A, 10)]),
        dns(RoutingPolicy::Multivalue, &[(A, -1)]),
    ];
    for bad in refused {
        let e = create(&r, &new("web", &ns.id, bad.clone())).await.unwrap_err();
        assert_eq!(code(e).0, "InvalidInput", "{bad:?}");
    }
    for bad_name in ["-web", "a b", &"x".repeat(128), "."] {
        assert_eq!(code(create(&r, &new(bad_name, &ns.id, None)).await.unwrap_err()).0, "InvalidInput", "{bad_name}");
    }
    let mut http_only = new("web", &ns.id, dns(RoutingPolicy::Multivalue, &[(A, 10)]));
    http_only.http_only = true;
    assert_eq!(code(create(&r, &http_only).await.unwrap_err()).0, "InvalidInput");
    assert_eq!(code(create(&r, &new("web", "ns-nothere", None)).await.unwrap_err()).0, "NamespaceNotFound");
    assert!(list(&r).unwrap().is_empty());

    let web =
        create(&r, &new("_web._tcp", &ns.id, dns(RoutingPolicy::Multivalue, &[(A, 10), (Srv, 20)]))).await.unwrap();
    assert_eq!(web.kind, ServiceType::DnsHttp);
    let e = create(&r, &new("_WEB._tcp", &ns.arn, None)).await.unwrap_err();
    assert_eq!(
        code(e),
        ("ServiceAlreadyExists", format!("Service with name _WEB._tcp already exists in this namespace: {}", web.id))
    );
    let cname = create(&r, &new("db", &ns.id, dns(RoutingPolicy::Weighted, &[(Cname, 60)]))).await.unwrap();
    assert_eq!(get(&r, &cname.arn).unwrap().record.id, cname.id);
    let plain = create(&r, &new("jobs", &ns.id, None)).await.unwrap();
    assert_eq!(plain.kind, ServiceType::Http);
}

#[tokio::test]
async fn http_namespaces_take_no_dns_records() {
    let t = TestRegion::new();
    let r = t.region();
    let new_ns = crate::discovery::namespaces::NewNamespace {
        name: "shop".into(),
        kind: crate::discovery::NamespaceType::Http,
        description: None,
        vpc: None,
        soa_ttl: None,
        tags: vec![],
        creator_request_id: None,
    };
    let op = crate::discovery::namespaces::create(&r, &new_ns).await.unwrap();
    let ns = &op.targets["NAMESPACE"];
    let e = create(&r, &new("web", ns, dns(RoutingPolicy::Multivalue, &[(RecordType::A, 10)]))).await.unwrap_err();
    assert_eq!(code(e).0, "InvalidInput");
    create(&r, &new("web", ns, None)).await.unwrap();
}

#[tokio::test]
async fn updates_change_ttls_of_the_same_types_and_deletes_wait_for_instances() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    let web = create(&r, &new("web", &ns.id, dns(RoutingPolicy::Multivalue, &[(RecordType::A, 10)]))).await.unwrap();
    let change = ServiceChange {
        description: Some("front".into()),
        records: Some(vec![DnsRecord { kind: RecordType::A, ttl: 99 }]),
    };
    let op = update(&r, &web.id, &change).await.unwrap();
    assert_eq!((op.kind, op.targets["SERVICE"].as_str()), (OperationType::UpdateService, web.id.as_str()));
    let now = get(&r, &web.id).unwrap().record;
    assert_eq!((now.dns.unwrap().records[0].ttl, now.description.as_deref()), (99, Some("front")));
    let wrong = ServiceChange { description: None, records: Some(vec![DnsRecord { kind: RecordType::Aaaa, ttl: 5 }]) };
    assert_eq!(code(update(&r, &web.id, &wrong).await.unwrap_err()).0, "InvalidInput");

    let attributes = [(instances::IPV4.to_string(), "10.0.0.1".to_string())].into();
    instances::register(&r, &web.id, "i-1", &attributes, None).await.unwrap();
    assert_eq!(instance_count(&r, &web.id).unwrap(), 1);
    assert_eq!(code(delete(&r, &web.id).await.unwrap_err()).0, "ResourceInUse");
    instances::deregister(&r, &web.id, "i-1").await.unwrap();
    delete(&r, &web.id).await.unwrap();
    assert_eq!(code(get(&r, &web.id).unwrap_err()).0, "ServiceNotFound");
    create(&r, &new("web", &ns.id, None)).await.unwrap();
}

#[tokio::test]
async fn service_attributes_have_a_quota() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    let web = create(&r, &new("web", &ns.id, None)).await.unwrap();
    let some: BTreeMap<String, String> = (0..30).map(|i| (format!("k{i}"), "v".to_string())).collect();
    change_attributes(&r, &web.id, &some, &[]).await.unwrap();
    let one_more = [("extra".to_string(), "v".to_string())].into();
    assert_eq!(
        code(change_attributes(&r, &web.id, &one_more, &[]).await.unwrap_err()).0,
        "ServiceAttributesLimitExceededException"
    );
    change_attributes(&r, &web.id, &one_more, &["k0".to_string()]).await.unwrap();
    let now = get(&r, &web.id).unwrap().record.attributes;
    assert!(now.contains_key("extra") && !now.contains_key("k0"));
}
