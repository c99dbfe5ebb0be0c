//! Who may read what an endpoint id shows. The id is the secret (each container learns only its
//! own from its environment); where the agent knows the address the container's requests come
//! from, a request from any other address is refused as well, so an id that leaked into another
//! task is of no use there:
//!
//! - an awsvpc task's containers come from the task's private address (its ENI);
//! - a bridge-mode container comes from its own address on the bridge;
//! - host-mode containers share the host's addresses, so the id alone decides.

use std::net::IpAddr;

use super::view::{ContainerView, TaskView};

/// Whether a request from `source` may read container `container` of task `task`.
pub fn admits(task: &TaskView, container: &ContainerView, source: IpAddr) -> bool {
    let source = match source {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return expected(task, container).is_none(),
        },
        IpAddr::V4(v4) => v4,
    };
    expected(task, container).is_none_or(|wanted| wanted == source)
}

/// The only address the container's requests can come from, when the agent knows it.
fn expected(task: &TaskView, container: &ContainerView) -> Option<std::net::Ipv4Addr> {
    match container.network_mode.as_str() {
        "awsvpc" => task.eni.as_ref().map(|eni| eni.private_ip),
        "bridge" => container.address,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::metadata::tests::{bridge_task, vpc_task};

    #[test]
    fn awsvpc_requests_come_from_the_tasks_address() {
        let task = vpc_task();
        let c = &task.containers[0];
        assert!(admits(&task, c, IpAddr::V4(Ipv4Addr::new(172, 31, 0, 5))));
        assert!(admits(&task, c, "::ffff:172.31.0.5".parse().unwrap()), "a v4-mapped address is that address");
        assert!(!admits(&task, c, IpAddr::V4(Ipv4Addr::new(172, 31, 0, 6))), "another task of the subnet");
        assert!(!admits(&task, c, IpAddr::V4(Ipv4Addr::LOCALHOST)), "the host");
        assert!(!admits(&task, c, "fe80::1".parse().unwrap()));
    }

    #[test]
    fn bridge_requests_come_from_the_containers_address_and_host_mode_is_not_checked() {
        let mut task = bridge_task();
        let c = task.containers[0].clone();
        assert!(admits(&task, &c, IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2))));
        assert!(!admits(&task, &c, IpAddr::V4(Ipv4Addr::new(10, 88, 0, 3))), "another container");
        let unknown = ContainerView { address: None, ..c.clone() };
        assert!(admits(&task, &unknown, IpAddr::V4(Ipv4Addr::new(10, 88, 0, 3))), "no address known: the id decides");
        task.containers[0].network_mode = "host".into();
        let host = task.containers[0].clone();
        assert!(admits(&task, &host, IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10))));
    }
}
