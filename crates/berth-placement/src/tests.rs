//! Unit and property tests of the placement engine on simulated clusters.

use super::Strategy;
use super::*;
use proptest::prelude::{Just, prop_assert, prop_assert_eq, prop_oneof, proptest};
use proptest::strategy::Strategy as _;

fn instance(id: &str, zone: &str, cpu: i64, memory: i64) -> Instance {
    Instance {
        id: id.into(),
        active: true,
        agent_connected: true,
        remaining: Resources { cpu, memory, ..Default::default() },
        attributes: BTreeMap::from([("ecs.availability-zone".to_string(), Some(zone.to_string()))]),
        ..Default::default()
    }
}

fn needs(cpu: i64, memory: i64) -> Requirements {
    Requirements { cpu, memory, ..Default::default() }
}

fn request(req: Requirements, count: usize, strategies: Vec<Strategy>, constraints: Vec<Constraint>) -> Request {
    Request { requirements: req, count, group: "family:web".into(), constraints, strategies, seed: 7 }
}

fn count_on(plan: &Plan, id: &str) -> usize {
    plan.placements.iter().filter(|p| *p == id).count()
}

#[test]
fn default_spreads_over_zones_then_instances() {
    let cluster = [instance("a1", "a", 4096, 8192), instance("a2", "a", 4096, 8192), instance("b1", "b", 4096, 8192)];
    let plan = place(&cluster, &Request::simple(needs(10, 100), 4, "family:web"));
    assert_eq!(plan.placements, ["a1", "b1", "a2", "b1"]);
}

#[test]
fn binpack_fills_one_instance_first() {
    let cluster = [instance("big", "a", 4096, 8192), instance("small", "a", 4096, 2048)];
    let plan = place(&cluster, &request(needs(1, 1024), 3, vec![Strategy::Binpack(Resource::Memory)], vec![]));
    assert_eq!(plan.placements, ["small", "small", "big"]);
}

#[test]
fn spread_then_binpack_chains() {
    let cluster =
        [instance("a-big", "a", 4096, 8192), instance("a-small", "a", 4096, 2048), instance("b-big", "b", 4096, 8192)];
    let chain = vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Binpack(Resource::Memory),
    ];
    let plan = place(&cluster, &request(needs(1, 512), 4, chain, vec![]));
    assert_eq!(plan.placements, ["a-small", "b-big", "a-small", "b-big"]);
}

#[test]
fn existing_tasks_of_the_group_count_for_spread() {
    let mut busy = instance("a1", "a", 4096, 8192);
    busy.task_groups = vec!["family:web".into(), "family:web".into(), "family:other".into()];
    let cluster = [busy, instance("b1", "b", 4096, 8192)];
    let plan = place(&cluster, &Request::simple(needs(1, 1), 2, "family:web"));
    assert_eq!(plan.placements, ["b1", "b1"], "zone a already runs two of the group");
}

#[test]
fn member_of_filters_and_reports() {
    let mut gpu = instance("gpu", "a", 4096, 8192);
    gpu.attributes.insert("gpu".into(), None);
    let cluster = [gpu, instance("plain", "a", 4096, 8192)];
    let only_gpu = Constraint::MemberOf(query::parse("attribute:gpu exists").unwrap());
    let plan = place(&cluster, &request(needs(1, 1), 2, vec![], vec![only_gpu.clone()]));
    assert_eq!(plan.placements, ["gpu", "gpu"]);
    let none = Constraint::MemberOf(query::parse("attribute:ecs.availability-zone == z").unwrap());
    let plan = place(&cluster, &request(needs(1, 1), 1, vec![], vec![none]));
    assert!(plan.placements.is_empty());
    assert_eq!(plan.rejections, [("gpu".to_string(), Rejection::MemberOf), ("plain".to_string(), Rejection::MemberOf)]);
}

#[test]
fn task_group_anti_affinity_sees_the_plans_own_tasks() {
    let cluster = [instance("i1", "a", 4096, 8192), instance("i2", "a", 4096, 8192)];
    let apart = Constraint::MemberOf(query::parse("not task:group == family:web").unwrap());
    let plan = place(&cluster, &request(needs(1, 1), 3, vec![Strategy::Binpack(Resource::Memory)], vec![apart]));
    assert_eq!(plan.placements.len(), 2, "one per instance even under binpack");
    assert_eq!(plan.rejections.iter().map(|r| r.1).collect::<Vec<_>>(), [Rejection::MemberOf, Rejection::MemberOf]);
}

#[test]
fn distinct_instance_counts_existing_and_planned_tasks() {
    let mut taken = instance("taken", "a", 4096, 8192);
    taken.task_groups = vec!["family:web".into()];
    let cluster = [taken, instance("i1", "a", 4096, 8192), instance("i2", "b", 4096, 8192)];
    let plan = place(&cluster, &request(needs(1, 1), 3, vec![], vec![Constraint::DistinctInstance]));
    assert_eq!(plan.placements.len(), 2);
    assert!(plan.rejections.iter().all(|(_, r)| *r == Rejection::DistinctInstance));
}

#[test]
fn reports_why_each_instance_refused() {
    let mut gone = instance("c", "a", 4096, 4096);
    gone.agent_connected = false;
    let mut draining = instance("d", "a", 4096, 4096);
    draining.active = false;
    let mut ported = instance("e", "a", 4096, 4096);
    ported.remaining.tcp_ports.insert(80);
    let req = Requirements { tcp_ports: vec![80], ..needs(512, 512) };
    let cluster = [instance("a", "a", 256, 4096), instance("b", "a", 4096, 256), gone, draining, ported];
    let plan = place(&cluster, &Request::simple(req, 1, "g"));
    assert!(plan.placements.is_empty());
    let reasons: Vec<_> = plan.rejections.iter().map(|(id, r)| (id.as_str(), r.reason())).collect();
    assert_eq!(reasons, [("a", "RESOURCE:CPU"), ("b", "RESOURCE:MEMORY"), ("c", "AGENT"), ("e", "RESOURCE:PORTS")]);
}

#[test]
fn random_depends_on_the_seed_only() {
    let cluster: Vec<_> = (0..20).map(|n| instance(&format!("i{n}"), "a", 4096, 8192)).collect();
    let mut r = request(needs(1, 1), 10, vec![Strategy::Random], vec![]);
    let first = place(&cluster, &r);
    assert_eq!(first, place(&cluster, &r));
    r.seed = 8;
    assert_ne!(first, place(&cluster, &r));
    let distinct: std::collections::BTreeSet<_> = first.placements.iter().collect();
    assert!(distinct.len() > 3, "random spreads: {:?}", first.placements);
}

/// A simulated cluster: (zone index, cpu, memory, tasks of the group already there); zone 3
/// stands for an instance without the zone attribute.
fn cluster_strategy() -> impl proptest::strategy::Strategy<Value = Vec<Instance>> {
    proptest::collection::vec((0usize..4, 0i64..4096, 0i64..8192, 0usize..3), 1..12).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(n, (zone, cpu, memory, existing))| {
                let mut i = instance(&format!("i{n}"), ["a", "b", "c", "-"][zone], cpu, memory);
                if zone == 3 {
                    i.attributes.clear();
                }
                i.task_groups = vec!["family:web".to_string(); existing];
                i
            })
            .collect()
    })
}

fn strategy_chain() -> impl proptest::strategy::Strategy<Value = Vec<Strategy>> {
    let one = prop_oneof![
        Just(Strategy::Binpack(Resource::Memory)),
        Just(Strategy::Binpack(Resource::Cpu)),
        Just(Strategy::Spread(SpreadField::Instance)),
        Just(Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into()))),
        Just(Strategy::Random),
    ];
    proptest::collection::vec(one, 0..4)
}

proptest! {
    /// Never over capacity, and the same input always gives the same plan.
    #[test]
    fn never_over_capacity(cluster in cluster_strategy(), chain in strategy_chain(), cpu in 0i64..1024, memory in 1i64..2048, count in 1usize..20) {
        let r = request(needs(cpu, memory), count, chain, vec![]);
        let plan = place(&cluster, &r);
        prop_assert_eq!(&plan, &place(&cluster, &r));
        for i in &cluster {
            let n = count_on(&plan, &i.id) as i64;
            prop_assert!(n * cpu <= i.remaining.cpu && n * memory <= i.remaining.memory);
        }
        prop_assert!(plan.placements.len() == count || !plan.rejections.is_empty() || cluster.iter().all(|i| !i.active));
    }

    /// Ordering each partition's instances places exactly as comparing every instance for
    /// every task does, whatever the strategies, constraints and existing tasks.
    #[test]
    fn partitions_place_as_a_full_scan_does(cluster in cluster_strategy(), chain in strategy_chain(), distinct in proptest::bool::ANY, cpu in 0i64..512, memory in 1i64..1024, count in 1usize..40, seed in 0u64..1000) {
        let constraints = if distinct { vec![Constraint::DistinctInstance] } else { vec![] };
        let r = Request { seed, ..request(needs(cpu, memory), count, chain, constraints) };
        prop_assert_eq!(place(&cluster, &r), place_by_scan(&cluster, &r));
    }

    /// distinctInstance never doubles: at most one task of the group per instance, counting
    /// the ones already there.
    #[test]
    fn distinct_instance_never_doubles(cluster in cluster_strategy(), chain in strategy_chain(), count in 1usize..20) {
        let plan = place(&cluster, &request(needs(1, 1), count, chain, vec![Constraint::DistinctInstance]));
        for i in &cluster {
            let existing = i.task_groups.iter().filter(|g| *g == "family:web").count();
            let placed = count_on(&plan, &i.id);
            prop_assert!(placed <= 1 && (existing == 0 || placed == 0), "{} had {existing}, got {placed}", i.id);
        }
    }

    /// With room everywhere, spread over zones keeps the zones' group counts within one task
    /// of each other (from an even start).
    #[test]
    fn zone_spread_stays_within_one(per_zone in 1usize..4, count in 1usize..30) {
        let cluster: Vec<_> = (0..per_zone * 3).map(|n| instance(&format!("i{n}"), ["a", "b", "c"][n % 3], 1 << 20, 1 << 20)).collect();
        let plan = place(&cluster, &Request::simple(needs(1, 1), count, "family:web"));
        prop_assert_eq!(plan.placements.len(), count);
        let mut per = BTreeMap::new();
        for p in &plan.placements {
            let zone = cluster.iter().find(|i| &i.id == p).unwrap().attributes["ecs.availability-zone"].clone();
            *per.entry(zone).or_insert(0usize) += 1;
        }
        let (lo, hi) = (per.values().min().copied().unwrap_or(0), per.values().max().copied().unwrap_or(0));
        prop_assert!(hi - if per.len() == 3 { lo } else { 0 } <= 1, "{:?}", per);
    }
}
