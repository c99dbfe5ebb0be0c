//! The texts ECS uses in service events, rollout reasons and stop reasons, in one place.

/// A task's `stoppedReason` when the scheduler replaces it for failing health checks.
pub const FAILED_HEALTH_CHECKS: &str = "Task failed container health checks";

/// A task's `stoppedReason` when the scheduler replaces it for failing a target group's
/// health checks.
pub fn failed_elb_health_checks(target_group: &str) -> String {
    format!("Task failed ELB health checks in (target-group {target_group})")
}

/// The service event for a task a target group found unhealthy.
pub fn elb_unhealthy(service: &str, task: &str, target_group: &str) -> String {
    format!("(service {service}) (task {task}) is unhealthy in (target-group {target_group}).")
}

/// Targets registered in one target group.
pub fn registered_targets(service: &str, count: usize, target_group: &str) -> String {
    format!("(service {service}) registered {count} targets in (target-group {target_group})")
}

/// Targets whose draining ended, in one target group.
pub fn deregistered_targets(service: &str, count: usize, target_group: &str) -> String {
    format!("(service {service}) deregistered {count} targets in (target-group {target_group})")
}

/// Tasks that began draining from their load balancers before they stop.
pub fn draining(service: &str, count: usize) -> String {
    format!("(service {service}) has begun draining connections on {count} tasks.")
}

pub fn steady(service: &str) -> String {
    format!("(service {service}) has reached a steady state.")
}

/// One event per [`LISTED`] tasks, as ECS's scheduler starts them.
pub fn started(service: &str, tasks: &[String]) -> Vec<String> {
    tasks
        .chunks(LISTED)
        .map(|c| format!("(service {service}) has started {} tasks: {}.", c.len(), task_list(c)))
        .collect()
}

/// One event per [`LISTED`] tasks.
pub fn stopped(service: &str, tasks: &[String]) -> Vec<String> {
    tasks
        .chunks(LISTED)
        .map(|c| format!("(service {service}) has stopped {} running tasks: {}.", c.len(), task_list(c)))
        .collect()
}

pub fn unhealthy(service: &str, task: &str) -> String {
    format!("(service {service}) (task {task}) failed container health checks.")
}

pub fn deployment_completed(service: &str, deployment: &str) -> String {
    format!("(service {service}) (deployment {deployment}) deployment completed.")
}

pub fn deployment_failed(service: &str, deployment: &str) -> String {
    format!("(service {service}) (deployment {deployment}) deployment failed: tasks failed to start.")
}

pub fn rolling_back(service: &str, to: &str) -> String {
    format!("(service {service}) rolling back to deployment {to}.")
}

/// Berth's wording: ECS tells lifecycle stages through DescribeServiceDeployments only.
pub fn stage(service: &str, deployment: &str, stage: crate::Stage) -> String {
    format!("(service {service}) (deployment {deployment}) entered lifecycle stage {}.", stage.as_str())
}

pub fn throttled(service: &str) -> String {
    format!(
        "(service {service}) is unable to consistently start tasks successfully. For more information, see the \
         Troubleshooting section of the Amazon ECS Developer Guide."
    )
}

/// Berth's wording: ECS documents no event for a failed deployment with no completed one
/// before it.
pub fn nothing_to_roll_back(service: &str, deployment: &str) -> String {
    format!(
        "(service {service}) (deployment {deployment}) has no completed deployment to roll back to: tasks of \
         earlier deployments keep running and no new tasks are launched."
    )
}

pub fn unable_to_place(service: &str, reason: &str) -> String {
    format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements. \
         Reason: {reason}"
    )
}

/// One event per [`LISTED`] tasks.
pub fn lost(service: &str, tasks: &[String]) -> Vec<String> {
    tasks
        .chunks(LISTED)
        .map(|c| {
            format!(
                "(service {service}) wrote off {} tasks whose container instance was lost: {}.",
                c.len(),
                task_list(c)
            )
        })
        .collect()
}

pub fn in_progress(deployment: &str) -> String {
    format!("ECS deployment {deployment} in progress.")
}

pub fn completed(deployment: &str) -> String {
    format!("ECS deployment {deployment} completed.")
}

pub const BREAKER_FAILED: &str = "ECS deployment circuit breaker: tasks failed to start.";

pub fn breaker_rollback(to: &str) -> String {
    format!("ECS deployment circuit breaker: rolling back to deploymentId {to}.")
}

/// How many tasks one event names: ECS starts a service's tasks ten at a time (RunTask's
/// limit) and tells of each batch, so one event never lists thousands.
pub const LISTED: usize = 10;

fn task_list(tasks: &[String]) -> String {
    tasks.iter().map(|t| format!("(task {t})")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_events_name_ten_tasks_each() {
        let tasks: Vec<String> = (0..23).map(|i| format!("t{i}")).collect();
        let events = started("web", &tasks);
        assert_eq!(events.len(), 3);
        assert!(events[0].starts_with("(service web) has started 10 tasks: (task t0) (task t1) "));
        assert_eq!(events[2], "(service web) has started 3 tasks: (task t20) (task t21) (task t22).");
        assert_eq!(stopped("web", &tasks[..1]), ["(service web) has stopped 1 running tasks: (task t0)."]);
        assert_eq!(lost("web", &tasks).len(), 3);
        assert!(started("web", &[]).is_empty());
    }
}
