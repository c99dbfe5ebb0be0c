//! The server over real UDP and TCP on loopback: answers from a snapshot, MULTIVALUE's eight
//! over UDP and all over TCP, NXDOMAIN with the SOA, updates, and forwarding to an upstream
//! (another server on loopback), never to itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use berth_dns::snapshot::{Host, Record, RecordData, RecordSet, Routing, Snapshot, Zone};
use berth_dns::{Config, DnsServer, Updater};
use hickory_server::proto::op::{Edns, Message, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn loopback() -> Config {
    Config { listen: vec!["127.0.0.1:0".parse().unwrap()], upstreams: vec![] }
}

async fn start(config: Config, snapshot: &Snapshot) -> (SocketAddr, Updater, tokio::sync::oneshot::Sender<()>) {
    let server = DnsServer::bind(config).await.expect("binds on loopback");
    let addr = server.local_addrs()[0];
    let updater = server.updater();
    updater.update(snapshot);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (addr, updater, stop)
}

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn udp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&query(name, qtype, true), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await.expect("an answer").unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 4242);
    m
}

async fn tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let q = query(name, qtype, false);
    stream.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    stream.write_all(&q).await.unwrap();
    let len = tokio::time::timeout(Duration::from_secs(5), stream.read_u16()).await.expect("an answer").unwrap();
    let mut buf = vec![0u8; len as usize];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn backend(count: u8) -> Snapshot {
    let records = (1..=count).map(|n| Record::healthy(RecordData::A(Ipv4Addr::new(10, 1, 0, n)))).collect();
    Snapshot {
        zones: vec![Zone {
            name: "internal.app".into(),
            soa_ttl: 15,
            serial: 1,
            record_sets: vec![
                RecordSet { name: "backend.internal.app".into(), ttl: 10, routing: Routing::Multivalue, records },
                RecordSet {
                    name: "db.internal.app".into(),
                    ttl: 30,
                    routing: Routing::Weighted,
                    records: vec![Record::healthy(RecordData::Cname("outside.example".into()))],
                },
            ],
        }],
        hosts: vec![],
    }
}

#[tokio::test]
async fn multivalue_is_eight_over_udp_and_all_over_tcp() {
    let (addr, _, _stop) = start(loopback(), &backend(20)).await;
    let over_udp = udp(addr, "backend.internal.app.", RecordType::A).await;
    assert_eq!(over_udp.metadata.response_code, ResponseCode::NoError);
    assert!(over_udp.metadata.authoritative && over_udp.metadata.recursion_available);
    assert_eq!(a_records(&over_udp).len(), 8);
    assert!(over_udp.edns.is_some(), "an EDNS query gets an EDNS answer");
    let over_tcp = tcp(addr, "backend.internal.app.", RecordType::A).await;
    let mut all = a_records(&over_tcp);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20);
    assert!(!over_tcp.metadata.truncation);
}

#[tokio::test]
async fn missing_names_get_nxdomain_with_the_soa_and_updates_take_effect() {
    let (addr, updater, _stop) = start(loopback(), &backend(2)).await;
    let nx = udp(addr, "frontend.internal.app.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities.len(), 1);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(nx.authorities[0].ttl, 15);
    let soa = tcp(addr, "internal.app.", RecordType::SOA).await;
    assert_eq!(soa.answers[0].record_type(), RecordType::SOA);

    let mut next = backend(1);
    next.zones[0].record_sets[0].name = "frontend.internal.app".into();
    updater.update(&next);
    assert_eq!(a_records(&udp(addr, "frontend.internal.app.", RecordType::A).await), [Ipv4Addr::new(10, 1, 0, 1)]);
    let gone = udp(addr, "backend.internal.app.", RecordType::A).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn other_names_are_forwarded_and_cnames_followed() {
    // The upstream: another server on loopback that knows one name outside any zone.
    let outside = Snapshot {
        zones: vec![],
        hosts: vec![Host { name: "outside.example".into(), addresses: vec!["192.0.2.7".parse().unwrap()] }],
    };
    let (upstream, _, _stop_upstream) = start(loopback(), &outside).await;
    let config = Config { listen: vec!["127.0.0.1:0".parse().unwrap()], upstreams: vec![upstream] };
    let (addr, _, _stop) = start(config, &backend(1)).await;

    for answer in
        [udp(addr, "outside.example.", RecordType::A).await, tcp(addr, "outside.example.", RecordType::A).await]
    {
        assert_eq!(a_records(&answer), [Ipv4Addr::new(192, 0, 2, 7)]);
        assert!(!answer.metadata.authoritative, "a forwarded answer is not ours");
    }
    // The upstream knows nothing else and has no upstream of its own: its SERVFAIL comes back.
    let unknown = udp(addr, "unknown.example.", RecordType::A).await;
    assert_eq!(unknown.metadata.response_code, ResponseCode::ServFail);
    // A CNAME of ours to a name outside is followed upstream, in one answer.
    let db = udp(addr, "db.internal.app.", RecordType::A).await;
    assert_eq!(db.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(a_records(&db), [Ipv4Addr::new(192, 0, 2, 7)]);
}

#[tokio::test]
async fn a_server_never_forwards_to_itself() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let me: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = DnsServer::bind(Config { listen: vec![me], upstreams: vec![me] }).await.unwrap();
    assert!(server.upstreams().is_empty());
    let updater = server.updater();
    updater.update(&Snapshot::default());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let answer = udp(me, "anything.example.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn over_udp_a_broken_query_gets_formerr_and_a_response_gets_nothing() {
    let (server, _updater, _stop) = start(loopback(), &backend(2)).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 4096];
    // A header that says one question, and a question cut short.
    let mut broken = query("backend.internal.app.", RecordType::A, false);
    broken.truncate(16);
    socket.send_to(&broken, server).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await.expect("an answer").unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!((m.metadata.id, m.metadata.response_code), (4242, ResponseCode::FormErr));
    // A response (the server must not answer answers: no reflection), then a query.
    let mut response = Message::from_vec(&query("backend.internal.app.", RecordType::A, false)).unwrap();
    response.metadata.message_type = hickory_server::proto::op::MessageType::Response;
    response.metadata.id = 1;
    socket.send_to(&response.to_vec().unwrap(), server).await.unwrap();
    socket.send_to(&query("backend.internal.app.", RecordType::A, false), server).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await.expect("an answer").unwrap();
    assert_eq!(Message::from_vec(&buf[..n]).unwrap().metadata.id, 4242, "the first datagram back answers the query");
}
