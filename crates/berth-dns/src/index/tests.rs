//! The lookup on hand-made snapshots: routing, negative answers, apex records, hosts.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RData, RecordType};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::snapshot::{Host, Record as SnapRecord, RecordSet, Zone};

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn a_set(name: &str, routing: Routing, healthy: &[u8], unhealthy: &[u8]) -> RecordSet {
    let records = healthy
        .iter()
        .map(|n| SnapRecord { data: RecordData::A(ip(*n)), healthy: true })
        .chain(unhealthy.iter().map(|n| SnapRecord { data: RecordData::A(ip(*n)), healthy: false }))
        .collect();
    RecordSet { name: name.into(), ttl: 10, routing, records }
}

fn zone(sets: Vec<RecordSet>) -> Snapshot {
    Snapshot {
        zones: vec![Zone { name: "internal.app".into(), soa_ttl: 15, serial: 7, record_sets: sets }],
        hosts: vec![Host { name: "ip-172-31-0-5.ec2.internal".into(), addresses: vec!["172.31.0.5".parse().unwrap()] }],
    }
}

fn ask(index: &Index, name: &str, qtype: RecordType, tcp: bool) -> Outcome {
    let mut rng = StdRng::seed_from_u64(1);
    index.lookup(&Name::from_ascii(name).unwrap(), qtype, tcp, &mut rng)
}

fn answer(outcome: Outcome) -> Answer {
    match outcome {
        Outcome::Answer(a) => *a,
        Outcome::Forward => panic!("forwarded"),
    }
}

fn addresses(a: &Answer) -> HashSet<Ipv4Addr> {
    a.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[test]
fn multivalue_answers_eight_over_udp_and_all_over_tcp() {
    let healthy: Vec<u8> = (1..=12).collect();
    let index = Index::new(&zone(vec![a_set("web.internal.app", Routing::Multivalue, &healthy, &[20, 21])]));
    let udp = answer(ask(&index, "web.internal.app.", RecordType::A, false));
    assert_eq!(udp.answers.len(), 8);
    assert_eq!(addresses(&udp).len(), 8, "no record twice");
    assert!(udp.authoritative && udp.code == ResponseCode::NoError);
    let tcp = answer(ask(&index, "web.internal.app.", RecordType::A, true));
    assert_eq!(addresses(&tcp), healthy.iter().map(|n| ip(*n)).collect(), "every healthy one, no unhealthy one");
    assert!(tcp.answers.iter().all(|r| r.ttl == 10 && r.name.to_ascii() == "web.internal.app."));
}

#[test]
fn multivalue_picks_at_random_and_fails_open() {
    let healthy: Vec<u8> = (1..=12).collect();
    let index = Index::new(&zone(vec![a_set("web.internal.app", Routing::Multivalue, &healthy, &[])]));
    let mut seen = HashSet::new();
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..20 {
        let name = Name::from_ascii("web.internal.app.").unwrap();
        seen.extend(addresses(&answer(index.lookup(&name, RecordType::A, false, &mut rng))));
    }
    assert_eq!(seen.len(), 12, "every record is answered over time");

    // No healthy record: the unhealthy ones, up to eight, as Route 53 fails open.
    let sick: Vec<u8> = (1..=10).collect();
    let index = Index::new(&zone(vec![a_set("web.internal.app", Routing::Multivalue, &[], &sick)]));
    assert_eq!(answer(ask(&index, "web.internal.app.", RecordType::A, false)).answers.len(), 8);
}

#[test]
fn weighted_answers_one_healthy_record() {
    let index = Index::new(&zone(vec![a_set("api.internal.app", Routing::Weighted, &[1, 2], &[3])]));
    let mut rng = StdRng::seed_from_u64(3);
    let name = Name::from_ascii("api.internal.app.").unwrap();
    let mut seen = HashSet::new();
    for _ in 0..30 {
        let a = answer(index.lookup(&name, RecordType::A, true, &mut rng));
        assert_eq!(a.answers.len(), 1);
        seen.extend(addresses(&a));
    }
    assert_eq!(seen, HashSet::from([ip(1), ip(2)]));
    let index = Index::new(&zone(vec![a_set("api.internal.app", Routing::Weighted, &[], &[3])]));
    assert_eq!(addresses(&answer(ask(&index, "api.internal.app.", RecordType::A, false))), HashSet::from([ip(3)]));
}

#[test]
fn missing_names_are_nxdomain_and_missing_types_nodata_with_the_soa() {
    let srv = RecordSet {
        name: "_web._tcp.internal.app".into(),
        ttl: 20,
        routing: Routing::Multivalue,
        records: vec![SnapRecord::healthy(RecordData::Srv {
            priority: 1,
            weight: 1,
            port: 8080,
            target: "t1._web._tcp.internal.app".into(),
        })],
    };
    let index = Index::new(&zone(vec![a_set("web.internal.app", Routing::Multivalue, &[1], &[]), srv]));
    let nx = answer(ask(&index, "nope.internal.app.", RecordType::A, false));
    assert_eq!((nx.code, nx.answers.len()), (ResponseCode::NXDomain, 0));
    let soa = &nx.authorities[0];
    assert_eq!((soa.record_type(), soa.ttl, soa.name.to_ascii().as_str()), (RecordType::SOA, 15, "internal.app."));
    match &soa.data {
        RData::SOA(s) => assert_eq!((s.serial, s.minimum), (7, 15)),
        other => panic!("{other:?}"),
    }
    let nodata = answer(ask(&index, "web.internal.app.", RecordType::AAAA, false));
    assert_eq!((nodata.code, nodata.answers.len(), nodata.authorities.len()), (ResponseCode::NoError, 0, 1));
    // A name between the apex and a record's owner exists, with no records of its own.
    let between = answer(ask(&index, "_tcp.internal.app.", RecordType::A, false));
    assert_eq!(between.code, ResponseCode::NoError);
    let srv = answer(ask(&index, "_web._tcp.internal.app.", RecordType::SRV, false));
    assert_eq!(srv.answers[0].data.to_string(), "1 1 8080 t1._web._tcp.internal.app.");
}

#[test]
fn the_apex_has_soa_and_ns_and_names_ignore_case() {
    let index = Index::new(&zone(vec![a_set("web.internal.app", Routing::Multivalue, &[1], &[])]));
    let soa = answer(ask(&index, "Internal.APP.", RecordType::SOA, false));
    assert_eq!(soa.answers[0].record_type(), RecordType::SOA);
    assert_eq!(soa.answers[0].name.to_ascii(), "Internal.APP.", "the answer names what was asked");
    let ns = answer(ask(&index, "internal.app.", RecordType::NS, false));
    assert_eq!(ns.answers[0].data.to_string(), SERVER_NAME);
    assert_eq!(addresses(&answer(ask(&index, "WEB.internal.app.", RecordType::A, false))), HashSet::from([ip(1)]));
}

#[test]
fn hosts_answer_and_everything_else_is_forwarded() {
    let index = Index::new(&zone(vec![]));
    let host = answer(ask(&index, "ip-172-31-0-5.ec2.internal.", RecordType::A, false));
    assert_eq!(host.answers[0].data.to_string(), "172.31.0.5");
    assert!(answer(ask(&index, "ip-172-31-0-5.ec2.internal.", RecordType::AAAA, false)).answers.is_empty());
    assert_eq!(ask(&index, "ip-172-31-0-6.ec2.internal.", RecordType::A, false), Outcome::Forward);
    assert_eq!(ask(&index, "example.com.", RecordType::A, false), Outcome::Forward);
}

#[test]
fn cnames_and_aliases_say_where_to_follow() {
    let cname = RecordSet {
        name: "db.internal.app".into(),
        ttl: 30,
        routing: Routing::Weighted,
        records: vec![SnapRecord::healthy(RecordData::Cname("primary.example.com".into()))],
    };
    let alias = RecordSet {
        name: "front.internal.app".into(),
        ttl: 60,
        routing: Routing::Weighted,
        records: vec![SnapRecord::healthy(RecordData::Alias("lb-1.elb.berth".into()))],
    };
    let index = Index::new(&zone(vec![cname, alias]));
    let a = answer(ask(&index, "db.internal.app.", RecordType::A, false));
    assert_eq!(a.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(a.follow, Some(Follow::Cname(Name::from_ascii("primary.example.com.").unwrap())));
    let a = answer(ask(&index, "db.internal.app.", RecordType::CNAME, false));
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.follow, None);
    let a = answer(ask(&index, "front.internal.app.", RecordType::AAAA, false));
    assert!(a.answers.is_empty());
    assert!(matches!(a.follow, Some(Follow::Alias { ttl: 60, .. })));
}
