//! Berth's placement engine: a pure function from a snapshot of container instances and a
//! request to a plan — which instance each task goes to, and why every other instance was
//! passed over. No I/O, no clock; the same input gives the same plan.
//!
//! The pipeline is filters, then a ranking:
//! 1. the instance must be ACTIVE (a DRAINING instance takes no new tasks);
//! 2. its agent must be connected (`AGENT` otherwise);
//! 3. its remaining cpu, memory and host ports must cover the task (`RESOURCE:*`);
//! 4. among those left, the task goes where the most memory remains (then cpu, then the
//!    instance id), so consecutive tasks spread over instances.
//!
//! Constraints, the cluster query language and the binpack/spread/random strategies build
//! on this pipeline.

use berth_model::resources::{Requirements, Resources, Shortfall};

/// One container instance as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub active: bool,
    pub agent_connected: bool,
    pub remaining: Resources,
}

/// Place `count` tasks that each need `requirements`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub requirements: Requirements,
    pub count: usize,
}

/// Why an instance was passed over, as ECS reports it in `failures[].reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Agent,
    Resource(Shortfall),
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Agent => "AGENT",
            Rejection::Resource(s) => s.reason(),
        }
    }
}

/// The outcome: instance ids in placement order (one per placed task) and, when fewer than
/// `count` tasks were placed, the reason each eligible-looking instance refused the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub placements: Vec<String>,
    pub rejections: Vec<(String, Rejection)>,
}

fn rejection(instance: &Instance, remaining: &Resources, req: &Requirements) -> Option<Rejection> {
    if !instance.agent_connected {
        return Some(Rejection::Agent);
    }
    remaining.shortfall(req).map(Rejection::Resource)
}

pub fn place(instances: &[Instance], request: &Request) -> Plan {
    let mut remaining: Vec<Resources> = instances.iter().map(|i| i.remaining.clone()).collect();
    let mut plan = Plan::default();
    for _ in 0..request.count {
        let best = instances
            .iter()
            .enumerate()
            .filter(|(n, i)| i.active && rejection(i, &remaining[*n], &request.requirements).is_none())
            .max_by(|(a, ia), (b, ib)| {
                (remaining[*a].memory, remaining[*a].cpu, std::cmp::Reverse(&ia.id)).cmp(&(
                    remaining[*b].memory,
                    remaining[*b].cpu,
                    std::cmp::Reverse(&ib.id),
                ))
            })
            .map(|(n, _)| n);
        match best {
            Some(n) => {
                remaining[n].reserve(&request.requirements);
                plan.placements.push(instances[n].id.clone());
            }
            None => {
                plan.rejections = instances
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.active)
                    .filter_map(|(n, i)| Some((i.id.clone(), rejection(i, &remaining[n], &request.requirements)?)))
                    .collect();
                break;
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn instance(id: &str, cpu: i64, memory: i64) -> Instance {
        Instance {
            id: id.into(),
            active: true,
            agent_connected: true,
            remaining: Resources { cpu, memory, ..Default::default() },
        }
    }

    fn needs(cpu: i64, memory: i64) -> Requirements {
        Requirements { cpu, memory, ..Default::default() }
    }

    #[test]
    fn spreads_by_remaining_memory() {
        let plan = place(
            &[instance("a", 4096, 4096), instance("b", 4096, 4096)],
            &Request { requirements: needs(10, 1024), count: 4 },
        );
        assert_eq!(plan.placements, ["a", "b", "a", "b"]);
        assert!(plan.rejections.is_empty());
    }

    #[test]
    fn reports_why_each_instance_refused() {
        let mut gone = instance("c", 4096, 4096);
        gone.agent_connected = false;
        let mut draining = instance("d", 4096, 4096);
        draining.active = false;
        let mut ported = instance("e", 4096, 4096);
        ported.remaining.tcp_ports.insert(80);
        let req = Requirements { tcp_ports: vec![80], ..needs(512, 512) };
        let plan = place(
            &[instance("a", 256, 4096), instance("b", 4096, 256), gone, draining, ported],
            &Request { requirements: req, count: 1 },
        );
        assert!(plan.placements.is_empty());
        let reasons: Vec<_> = plan.rejections.iter().map(|(id, r)| (id.as_str(), r.reason())).collect();
        assert_eq!(reasons, [("a", "RESOURCE:CPU"), ("b", "RESOURCE:MEMORY"), ("c", "AGENT"), ("e", "RESOURCE:PORTS")]);
    }

    #[test]
    fn static_ports_allow_one_task_per_instance() {
        let req = Requirements { tcp_ports: vec![8080], ..needs(1, 1) };
        let plan =
            place(&[instance("a", 4096, 4096), instance("b", 4096, 4096)], &Request { requirements: req, count: 3 });
        assert_eq!(plan.placements.len(), 2);
        assert_eq!(plan.rejections.len(), 2);
    }

    proptest! {
        /// Never over capacity, and the same input always gives the same plan.
        #[test]
        fn never_over_capacity(caps in proptest::collection::vec((0i64..4096, 0i64..8192), 1..8),
                               cpu in 0i64..1024, memory in 1i64..2048, count in 1usize..20) {
            let instances: Vec<_> = caps.iter().enumerate().map(|(n, (c, m))| instance(&format!("i{n}"), *c, *m)).collect();
            let request = Request { requirements: needs(cpu, memory), count };
            let plan = place(&instances, &request);
            prop_assert_eq!(&plan, &place(&instances, &request));
            for (n, i) in instances.iter().enumerate() {
                let placed = plan.placements.iter().filter(|p| **p == i.id).count() as i64;
                prop_assert!(placed * cpu <= caps[n].0 && placed * memory <= caps[n].1);
            }
            prop_assert!(plan.placements.len() == count || !plan.rejections.is_empty());
        }
    }
}
