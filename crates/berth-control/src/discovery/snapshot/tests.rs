//! The DNS snapshot built from Cloud Map records and network interfaces.

use std::collections::BTreeMap;

use super::*;
use crate::discovery::instances::{INIT_HEALTH, register, set_custom_health};
use crate::discovery::namespaces::tests::private;
use crate::discovery::records::{CustomHealth, CustomHealthConfig};
use crate::discovery::services::tests::{dns, new};
use crate::vpc::testing::TestRegion;

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn zones_carry_each_services_record_sets_with_health() {
    let t = TestRegion::new();
    let r = t.region();
    let ns = private(&r, "internal.app").await;
    let mut web = new("web", &ns.id, dns(RoutingPolicy::Multivalue, &[(RecordType::A, 10), (RecordType::Srv, 20)]));
    web.custom_health = Some(CustomHealthConfig { failure_threshold: None });
    let web = services::create(&r, &web).await.unwrap();
    services::create(&r, &new("jobs", &ns.id, None)).await.unwrap();
    register(&r, &web.id, "t1", &attrs(&[(IPV4, "10.0.0.1"), (PORT, "8080")]), None).await.unwrap();
    register(&r, &web.id, "t2", &attrs(&[(IPV4, "10.0.0.2"), (PORT, "8080"), (INIT_HEALTH, "UNHEALTHY")]), None)
        .await
        .unwrap();

    let snapshot = dns_snapshot(&t.control, None).unwrap();
    assert_eq!(snapshot.zones.len(), 1);
    let zone = &snapshot.zones[0];
    assert_eq!((zone.name.as_str(), zone.soa_ttl), ("internal.app", 15));
    let a = zone.record_sets.iter().find(|s| s.name == "web.internal.app" && s.ttl == 10).unwrap();
    assert_eq!(a.routing, Routing::Multivalue);
    assert_eq!(
        a.records,
        [
            Record { data: RecordData::A("10.0.0.1".parse().unwrap()), healthy: true },
            Record { data: RecordData::A("10.0.0.2".parse().unwrap()), healthy: false }
        ]
    );
    let srv = zone.record_sets.iter().find(|s| s.name == "web.internal.app" && s.ttl == 20).unwrap();
    assert_eq!(
        srv.records[0].data,
        RecordData::Srv { priority: 1, weight: 1, port: 8080, target: "t1.web.internal.app".into() }
    );
    let target = zone.record_sets.iter().find(|s| s.name == "t2.web.internal.app").unwrap();
    assert_eq!((target.routing, target.ttl), (Routing::Simple, 10));

    set_custom_health(&r, &web.id, "t2", CustomHealth::Healthy).await.unwrap();
    let snapshot = dns_snapshot(&t.control, None).unwrap();
    let a = snapshot.zones[0].record_sets.iter().find(|s| s.name == "web.internal.app" && s.ttl == 10).unwrap();
    assert!(a.records.iter().all(|r| r.healthy));
}

#[tokio::test]
async fn http_namespaces_are_no_zones_and_interfaces_are_hosts() {
    let t = TestRegion::new();
    let r = t.region();
    let shop = crate::discovery::namespaces::NewNamespace {
        name: "shop".into(),
        kind: crate::discovery::NamespaceType::Http,
        description: None,
        vpc: None,
        soa_ttl: None,
        tags: vec![],
        creator_request_id: None,
    };
    crate::discovery::namespaces::create(&r, &shop).await.unwrap();
    crate::vpc::defaults::ensure(&r).await.unwrap();
    let subnet = crate::vpc::subnets::list(&r).unwrap().remove(0).id;
    let subnets = [subnet];
    let req = crate::vpc::EniRequest {
        subnets: &subnets,
        security_groups: &[],
        assign_public_ip: false,
        public_pool: None,
        task_arn: "t",
    };
    let (eni, c, o) = crate::vpc::allocate_eni_ops(&r, &req).unwrap();
    assert!(r.store().txn(berth_store::Txn::new().when(c).and_then(o)).await.unwrap().succeeded);
    let snapshot = dns_snapshot(&t.control, None).unwrap();
    assert!(snapshot.zones.is_empty());
    assert_eq!(
        snapshot.hosts,
        [Host { name: eni.private_dns_name.clone(), addresses: vec![IpAddr::V4(eni.private_ip)] }]
    );
}

#[tokio::test]
async fn the_feed_rebuilds_on_changes() {
    let t = TestRegion::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let control = t.control.clone();
    let feeding = tokio::spawn(feed(control, None, move |s| {
        let _ = tx.send(s);
    }));
    assert!(rx.recv().await.unwrap().zones.is_empty());
    let r = t.region();
    private(&r, "internal.app").await;
    let next = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let s = rx.recv().await.unwrap();
            if !s.zones.is_empty() {
                return s;
            }
        }
    })
    .await
    .expect("a snapshot with the new zone");
    assert_eq!(next.zones[0].name, "internal.app");
    t.control.close();
    feeding.await.unwrap().unwrap();
}

#[tokio::test]
async fn load_balancer_names_come_and_go_with_their_load_balancers() {
    use crate::elb::arns::LbType;
    use crate::elb::load_balancers::{self, NewLoadBalancer, Scheme};
    use crate::vpc::{defaults, subnets};
    let t = TestRegion::new();
    let r = t.region();
    defaults::ensure(&r).await.unwrap();
    let subnet = subnets::list(&r).unwrap().remove(0).id;
    let listen: IpAddr = "127.0.0.9".parse().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let feeding = tokio::spawn(feed(t.control.clone(), Some(listen), move |s| {
        let _ = tx.send(s);
    }));
    let mut next = async |want: usize| {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let s = rx.recv().await.unwrap();
                if s.hosts.len() == want {
                    return s;
                }
            }
        })
        .await
        .expect("a snapshot with the load balancers")
    };
    assert!(next(0).await.hosts.is_empty());
    let new = NewLoadBalancer {
        name: "web".into(),
        lb_type: LbType::Application,
        scheme: Scheme::Internal,
        subnets: vec![subnet],
        security_groups: None,
        tags: vec![],
    };
    let lb = load_balancers::create(&r, new).await.unwrap();
    assert_eq!(next(1).await.hosts, [Host { name: lb.dns_name.clone(), addresses: vec![listen] }]);
    // Without a listener address (no data plane) the names are not answered.
    assert!(dns_snapshot(&t.control, None).unwrap().hosts.is_empty());
    load_balancers::delete(&r, &lb.arn).await.unwrap();
    assert!(next(0).await.hosts.is_empty());
    t.control.close();
    feeding.await.unwrap().unwrap();
}
