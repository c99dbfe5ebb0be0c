//! The endpoint in process: views published in a registry, served over real HTTP on loopback
//! with recorded readings; and the fixtures the unit tests of the other modules share.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use berth_agent_protocol::network::Eni;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::server::{Server, serve};
use super::stats::{CpuReading, IoEntry, MemoryReading, NetCounters, Reading, Readings};
use super::view::{ContainerView, PortView, TaskView};
use super::{Registry, render};

pub const TASK: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/t1";

fn at(secs: u64) -> Option<std::time::SystemTime> {
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// A running container of an awsvpc FARGATE task (the talks' webserver: task 256/512,
/// container 99/100).
fn web() -> ContainerView {
    ContainerView {
        name: "web".into(),
        docker_id: Some("d0c4e7".into()),
        docker_name: "berth-t1-web".into(),
        image: "127.0.0.1:5000/busybox:latest".into(),
        image_id: Some("sha256:abc".into()),
        labels: BTreeMap::from([("com.berth.task-arn".into(), TASK.into())]),
        desired_status: "RUNNING".into(),
        known_status: "RUNNING".into(),
        exit_code: None,
        cpu: 99,
        memory: 100,
        created_at: at(1_700_000_001),
        started_at: at(1_700_000_002),
        finished_at: None,
        log_driver: Some("awslogs".into()),
        log_options: json!({"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1"}).as_object().unwrap().clone(),
        container_arn: Some("arn:aws:ecs:us-east-1:000000000000:container/default/t1/c-1".into()),
        network_mode: "awsvpc".into(),
        address: None,
        ports: vec![PortView { container_port: 80, protocol: "tcp".into(), host_port: 80, host_ip: None }],
        cgroup: Some("/berth-tasks/t1/d0c4e7".into()),
        live: true,
        restart_count: Some(2),
    }
}

pub fn vpc_task() -> TaskView {
    TaskView {
        cluster: "default".into(),
        task_arn: TASK.into(),
        family: "web".into(),
        revision: "3".into(),
        desired_status: "RUNNING".into(),
        known_status: "RUNNING".into(),
        cpu: Some(256),
        memory: Some(512),
        pull_started_at: at(1_700_000_000),
        pull_stopped_at: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)),
        execution_stopped_at: None,
        availability_zone: Some("us-east-1a".into()),
        launch_type: Some("FARGATE".into()),
        eni: Some(Eni {
            id: "eni-0123456789abcdef0".into(),
            subnet_id: "subnet-1".into(),
            vpc_id: "vpc-1".into(),
            subnet_cidr: "172.31.0.0/20".into(),
            gateway: Ipv4Addr::new(172, 31, 0, 1),
            private_ip: Ipv4Addr::new(172, 31, 0, 5),
            mac: "0a:00:ac:1f:00:05".into(),
            private_dns_name: "ip-172-31-0-5.ec2.internal".into(),
            public_ip: None,
            security_groups: vec!["sg-1".into()],
        }),
        containers: vec![web()],
    }
}

/// A bridge-mode task whose one container exited with code 3.
pub fn bridge_task() -> TaskView {
    let exited = ContainerView {
        network_mode: "bridge".into(),
        address: Some(Ipv4Addr::new(10, 88, 0, 2)),
        ports: vec![PortView {
            container_port: 80,
            protocol: "tcp".into(),
            host_port: 32768,
            host_ip: Some("0.0.0.0".into()),
        }],
        known_status: "STOPPED".into(),
        exit_code: Some(3),
        finished_at: at(1_700_000_010),
        log_driver: None,
        container_arn: None,
        live: false,
        restart_count: None,
        ..web()
    };
    TaskView { eni: None, launch_type: None, containers: vec![exited], ..vpc_task() }
}

/// A reading taken at `at_secs` with `cpu_total` ns of cpu and `rx` bytes received.
pub fn reading(at_secs: u64, cpu_total: u64, rx: u64) -> Reading {
    Reading {
        at: UNIX_EPOCH + Duration::from_secs(at_secs),
        cpu: CpuReading {
            total: cpu_total,
            percpu: vec![cpu_total / 2, cpu_total / 2],
            user: 30,
            system: 10,
            host_total: 1_000_000,
            online_cpus: 2,
            ..Default::default()
        },
        memory: MemoryReading {
            usage: 1_806_336,
            max_usage: Some(6_299_648),
            limit: 134_217_728,
            stat: vec![("rss".into(), 606_208), ("cache".into(), 0)],
        },
        pids: Some(3),
        io_service_bytes: vec![IoEntry { major: 8, minor: 0, op: "Read".into(), value: 4096 }],
        io_serviced: Vec::new(),
        networks: vec![("eth0".into(), NetCounters { rx_bytes: rx, tx_bytes: rx / 2, ..Default::default() })],
    }
}

/// Readings that grow by a second (and 1000 ns of cpu, 100 bytes received) at every read,
/// recording what was asked.
#[derive(Default)]
pub struct FakeReadings {
    pub asked: Mutex<Vec<(String, bool)>>,
}

impl Readings for FakeReadings {
    fn read(&self, cgroup: &str, network: bool) -> Option<Reading> {
        let mut asked = self.asked.lock().unwrap();
        asked.push((cgroup.to_string(), network));
        let n = asked.len() as u64;
        let mut r = reading(1_700_000_100 + n, 1000 * n, 100 * n);
        if !network {
            r.networks.clear();
        }
        Some(r)
    }
}

struct Endpoint {
    address: SocketAddr,
    registry: Arc<Registry>,
    readings: Arc<FakeReadings>,
    _server: tokio::task::JoinHandle<()>,
}

async fn endpoint() -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let registry = Arc::new(Registry::new([1; 32], Some(format!("http://{address}"))));
    let readings = Arc::new(FakeReadings::default());
    let server = Arc::new(Server::new(registry.clone(), readings.clone()));
    Endpoint { address, registry, readings, _server: tokio::spawn(serve(listener, server)) }
}

/// `method path` sent from `source` (a loopback address): the status and the JSON body.
async fn request(to: SocketAddr, source: Ipv4Addr, method: &str, path: &str) -> (u16, Value) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: 169.254.170.2\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (headers, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(headers.to_ascii_lowercase().contains("content-type: application/json"), "{headers}");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A bridge task whose container's address is `address` (the requests' source in tests).
fn bridge_at(address: Ipv4Addr) -> TaskView {
    let mut view = bridge_task();
    let c = &mut view.containers[0];
    (c.address, c.known_status, c.exit_code, c.finished_at, c.live) =
        (Some(address), "RUNNING".into(), None, None, true);
    view
}

#[tokio::test]
async fn each_path_answers_with_its_json() {
    let e = endpoint().await;
    e.registry.publish(bridge_at(LOCAL));
    let id = e.registry.id(TASK, "web");
    let view = bridge_at(LOCAL);

    let (status, body) = request(e.address, LOCAL, "GET", &format!("/v4/{id}")).await;
    assert_eq!((status, &body), (200, &render::container(&view, &view.containers[0], render::Version::V4)));
    let (status, body) = request(e.address, LOCAL, "GET", &format!("/v4/{id}/task")).await;
    assert_eq!(
        (status, body["TaskARN"].as_str(), body["Containers"][0]["DockerId"].as_str()),
        (200, Some(TASK), Some("d0c4e7"))
    );
    let (status, body) = request(e.address, LOCAL, "GET", &format!("/v3/{id}/task")).await;
    assert_eq!((status, body.get("LaunchType")), (200, None));

    let (status, first) = request(e.address, LOCAL, "GET", &format!("/v4/{id}/stats")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!((first["id"].as_str(), first["name"].as_str()), (Some("d0c4e7"), Some("/berth-t1-web")));
    assert_eq!(first["preread"], super::stats::NO_TIME);
    assert_eq!(first["memory_stats"]["usage"], 1_806_336);
    let (_, second) = request(e.address, LOCAL, "GET", &format!("/v4/{id}/stats")).await;
    assert_eq!(second["preread"], first["read"], "the previous reading is the pre half");
    assert_eq!(second["precpu_stats"]["cpu_usage"]["total_usage"], first["cpu_stats"]["cpu_usage"]["total_usage"]);
    let (status, all) = request(e.address, LOCAL, "GET", &format!("/v4/{id}/task/stats")).await;
    assert_eq!(status, 200);
    assert_eq!(all.as_object().unwrap().keys().collect::<Vec<_>>(), ["d0c4e7"]);
    assert_eq!(all["d0c4e7"]["networks"]["eth0"]["rx_bytes"], 300);
    let asked = e.readings.asked.lock().unwrap().clone();
    assert_eq!(asked[0], ("/berth-tasks/t1/d0c4e7".to_string(), true), "a bridge container's own interfaces are read");
}

#[tokio::test]
async fn unknown_ids_wrong_sources_other_methods_and_gone_tasks_are_refused() {
    let e = endpoint().await;
    e.registry.publish(bridge_at(Ipv4Addr::new(127, 0, 0, 2)));
    let id = e.registry.id(TASK, "web");

    let (status, body) = request(e.address, LOCAL, "GET", "/v4/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, 404);
    assert!(body.as_str().unwrap().starts_with("V4 container metadata handler: no running task"), "{body}");
    let (status, body) = request(e.address, LOCAL, "GET", &format!("/v4/{id}/task")).await;
    assert_eq!(status, 403, "the container's address is 127.0.0.2, the request came from 127.0.0.1");
    assert!(body.as_str().unwrap().starts_with("V4 task metadata handler: endpoint id"), "{body}");
    assert_eq!(request(e.address, Ipv4Addr::new(127, 0, 0, 2), "GET", &format!("/v4/{id}/task")).await.0, 200);
    assert_eq!(request(e.address, Ipv4Addr::new(127, 0, 0, 2), "POST", &format!("/v4/{id}")).await.0, 405);
    assert_eq!(request(e.address, LOCAL, "GET", "/v2/metadata").await.0, 404);

    // A stopped container has no stats; a removed task no metadata.
    let mut stopped = bridge_task();
    stopped.containers[0].address = Some(Ipv4Addr::new(127, 0, 0, 2));
    e.registry.publish(stopped);
    let (status, body) = request(e.address, Ipv4Addr::new(127, 0, 0, 2), "GET", &format!("/v3/{id}/stats")).await;
    assert_eq!(status, 404);
    assert!(body.as_str().unwrap().starts_with("V3 container stats handler: container web has no stats"), "{body}");
    let (status, body) = request(e.address, Ipv4Addr::new(127, 0, 0, 2), "GET", &format!("/v4/{id}/task/stats")).await;
    assert_eq!((status, body), (200, json!({})), "no running container, no stats");
    assert!(e.readings.asked.lock().unwrap().is_empty(), "a stopped container's cgroup is not read");
    e.registry.remove(TASK);
    assert_eq!(request(e.address, Ipv4Addr::new(127, 0, 0, 2), "GET", &format!("/v4/{id}")).await.0, 404);
}

#[tokio::test]
async fn awsvpc_ids_answer_only_the_tasks_address() {
    let e = endpoint().await;
    let mut view = vpc_task();
    view.eni.as_mut().unwrap().private_ip = Ipv4Addr::new(127, 0, 0, 3);
    e.registry.publish(view);
    let id = e.registry.id(TASK, "web");
    assert_eq!(request(e.address, LOCAL, "GET", &format!("/v4/{id}")).await.0, 403);
    let (status, body) = request(e.address, Ipv4Addr::new(127, 0, 0, 3), "GET", &format!("/v4/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["Networks"][0]["IPv4Addresses"], json!(["127.0.0.3"]));
}

#[test]
fn containers_get_their_uris_unless_they_have_no_network() {
    let registry = Registry::new([2; 32], Some("http://169.254.170.2".into()));
    let mut spec = crate::runtime::ContainerSpec {
        network_mode: "bridge".into(),
        env: vec!["A=1".into(), "ECS_CONTAINER_METADATA_URI=mine".into()],
        ..Default::default()
    };
    registry.inject(TASK, "web", &mut spec);
    let id = registry.id(TASK, "web");
    assert_eq!(
        spec.env,
        [
            "A=1".to_string(),
            format!("ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/{id}"),
            format!("ECS_CONTAINER_METADATA_URI=http://169.254.170.2/v3/{id}")
        ]
    );
    let mut none = crate::runtime::ContainerSpec { network_mode: "none".into(), ..Default::default() };
    registry.inject(TASK, "web", &mut none);
    assert!(none.env.is_empty(), "nothing could reach the endpoint");
    let off = Registry::new([2; 32], None);
    let mut spec = crate::runtime::ContainerSpec { network_mode: "host".into(), ..Default::default() };
    off.inject(TASK, "web", &mut spec);
    assert!(spec.env.is_empty(), "the endpoint is off");
}

#[test]
fn lookups_follow_publications() {
    let registry = Registry::new([3; 32], None);
    let id = registry.id(TASK, "web");
    assert!(registry.lookup(&id).is_none());
    registry.publish(vpc_task());
    let (view, n) = registry.lookup(&id).unwrap();
    assert_eq!((view.task_arn.as_str(), view.containers[n].name.as_str()), (TASK, "web"));
    let mut later = vpc_task();
    later.known_status = "STOPPED".into();
    registry.publish(later);
    assert_eq!(registry.lookup(&id).unwrap().0.known_status, "STOPPED", "the latest view answers");
    registry.remove(TASK);
    assert!(registry.lookup(&id).is_none());
}
