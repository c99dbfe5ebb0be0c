//! Placements per second of the pure engine on simulated clusters of 100 to 10,000
//! instances, with the chain the issue names: binpack + spread + memberOf. Each iteration
//! places 1,000 tasks (one request), so criterion's element throughput is placements/s.
//!
//! Run: `cargo bench -p berth-placement` (or scripts/bench, which records the curve).

use std::collections::BTreeMap;

use berth_model::resources::{Requirements, Resources};
use berth_placement::{Constraint, Instance, Request, Resource, SpreadField, Strategy, place, query};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const TASKS: usize = 1_000;

fn cluster(n: usize) -> Vec<Instance> {
    (0..n)
        .map(|i| Instance {
            id: format!("instance-{i:05}"),
            active: true,
            agent_connected: true,
            remaining: Resources { cpu: 16_384, memory: 65_536, ..Default::default() },
            attributes: BTreeMap::from([
                ("ecs.availability-zone".to_string(), Some(["zone-a", "zone-b", "zone-c"][i % 3].to_string())),
                ("team".to_string(), Some(["web", "api", "batch"][i % 3 / 2 + i % 2].to_string())),
            ]),
            task_groups: vec!["family:other".to_string(); i % 4],
            ..Default::default()
        })
        .collect()
}

fn request() -> Request {
    Request {
        requirements: Requirements { cpu: 16, memory: 32, ..Default::default() },
        count: TASKS,
        group: "service:web".into(),
        constraints: vec![Constraint::MemberOf(
            query::parse("attribute:team in [web, api] and not attribute:gpu exists").unwrap(),
        )],
        strategies: vec![
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
            Strategy::Binpack(Resource::Memory),
        ],
        seed: 1,
    }
}

fn placements(c: &mut Criterion) {
    let mut group = c.benchmark_group("placement");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.sample_size(10);
    let request = request();
    for n in [100, 1_000, 5_000, 10_000] {
        let instances = cluster(n);
        assert_eq!(place(&instances, &request).placements.len(), TASKS, "the cluster has room for every task");
        group.bench_with_input(BenchmarkId::new("binpack+spread+memberOf", n), &instances, |b, instances| {
            b.iter(|| place(instances, &request))
        });
    }
    group.finish();
}

criterion_group!(benches, placements);
criterion_main!(benches);
