//! The assignment channel: `GET /berth/v1/assignments?cluster=C&containerInstance=ID&since=REV&wait=SECONDS[&changes=1]`,
//! SigV4-signed for `ecs`. It answers every task placed on the instance that is not STOPPED,
//! and the store revision it read them at; with `since`, it first waits up to `wait` seconds
//! for a change after that revision.
//!
//! With `changes=1` (and `since` above 0) the answer carries only the tasks that changed after
//! `since`, plus `live`: the ARNs of every task the instance should hold. An agent with
//! twenty tasks then gets one task per change, not twenty ([`Assigned`] merges the answers).
//! The server may still answer whole (no `live`), for example after a security group
//! changed.

use std::time::Duration;

use berth_model::task::TaskStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::status::{DesiredStatus, task_status};

/// The channel's path.
pub const PATH: &str = "/berth/v1/assignments";

/// One poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentsQuery {
    pub cluster: String,
    /// The container instance's id (the last part of its ARN) or ARN.
    pub container_instance: String,
    /// The revision of the previous answer (0: answer at once).
    pub since: u64,
    pub wait: Duration,
    /// Ask for the tasks changed after `since` only (see the module documentation).
    pub changes: bool,
}

impl AssignmentsQuery {
    /// The path and query the request is sent (and signed) with. Cluster names and instance
    /// ids are letters, digits, `-` and `_`; anything else is percent-encoded.
    pub fn path_and_query(&self) -> String {
        format!(
            "{PATH}?cluster={}&containerInstance={}&since={}&wait={}{}",
            encode(&self.cluster),
            encode(&self.container_instance),
            self.since,
            self.wait.as_secs(),
            if self.changes { "&changes=1" } else { "" }
        )
    }
}

/// Percent-encodes everything but unreserved characters, as SigV4 canonicalises a query.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The answer: the live tasks on the instance, or those of them that changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    pub revision: u64,
    pub tasks: Vec<AssignedTask>,
    /// In an answer of changes only: the ARN of every task the instance should hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Vec<String>>,
}

/// What an agent holds of the channel: every task assigned to it, kept from whole answers
/// and answers of changes alike.
#[derive(Debug, Default)]
pub struct Assigned {
    tasks: std::collections::BTreeMap<String, AssignedTask>,
}

impl Assigned {
    /// Takes in an answer: a whole one replaces everything; one of changes updates the tasks
    /// it carries and lets go of those no longer `live`. Returns the tasks it carried.
    pub fn merge(&mut self, answer: Assignments) -> Vec<AssignedTask> {
        match answer.live {
            None => self.tasks.clear(),
            Some(live) => {
                let live: std::collections::HashSet<String> = live.into_iter().collect();
                self.tasks.retain(|arn, _| live.contains(arn));
            }
        }
        for task in &answer.tasks {
            self.tasks.insert(task.task_arn.clone(), task.clone());
        }
        answer.tasks
    }

    /// Every task assigned now, by ARN.
    pub fn all(&self) -> impl Iterator<Item = &AssignedTask> {
        self.tasks.values()
    }
}

/// A task as the agent needs it: what the channel sends of each task (not the whole ECS task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedTask {
    pub task_arn: String,
    pub task_definition_arn: String,
    pub desired_status: DesiredStatus,
    #[serde(with = "task_status")]
    pub last_status: TaskStatus,
    /// The RunTask/StartTask `overrides` (`containerOverrides`, `cpu`, `memory`), as ECS shapes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Map<String, Value>>,
    /// An awsvpc task's network interface and security rules (Berth's extension).
    #[serde(default, rename = "berthNetwork", skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::TaskNetwork>,
    /// A Service Connect task's aliases and ingress ports (Berth's extension).
    #[serde(default, rename = "berthServiceConnect", skip_serializing_if = "Option::is_none")]
    pub service_connect: Option<crate::connect::ServiceConnect>,
    /// Seconds the task's containers get between SIGTERM and SIGKILL when it is stopped,
    /// instead of each one's `stopTimeout`: a spot interruption's warning (Berth's extension).
    #[serde(default, rename = "berthStopTimeout", skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// `EC2` or `FARGATE`, as DescribeTasks shows it (the runtime and the task metadata
    /// endpoint depend on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// The zone of the instance the task was placed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// The task's containers as ECS shows them (only their names and ARNs are read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<AssignedContainer>,
}

/// A container of an assigned task, as far as the agent reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedContainer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_arn: Option<String>,
}

impl AssignedTask {
    /// The task's id: the last part of its ARN.
    pub fn id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or_default()
    }

    /// The task's cluster, as its ARN names it (`task/CLUSTER/ID`): where its reports go. A
    /// FARGATE task may belong to another cluster than its host's.
    pub fn cluster(&self) -> &str {
        let mut parts = self.task_arn.rsplit('/');
        parts.next();
        parts.next().unwrap_or_default()
    }

    /// Whether the control plane wants it stopped.
    pub fn stop_wanted(&self) -> bool {
        self.desired_status == DesiredStatus::Stopped
    }

    /// The ARN of its container named `name`, when the control plane gave one.
    pub fn container_arn(&self, name: &str) -> Option<&str> {
        self.containers.iter().find(|c| c.name == name).and_then(|c| c.container_arn.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_query_is_percent_encoded_and_the_answer_typed() {
        let q = AssignmentsQuery {
            cluster: "my cluster".into(),
            container_instance: "abc123".into(),
            since: 7,
            wait: Duration::from_secs(20),
            changes: false,
        };
        assert_eq!(
            q.path_and_query(),
            "/berth/v1/assignments?cluster=my%20cluster&containerInstance=abc123&since=7&wait=20"
        );
        let changes = AssignmentsQuery { changes: true, ..q.clone() };
        assert!(changes.path_and_query().ends_with("&since=7&wait=20&changes=1"));
        let answer: Assignments = serde_json::from_value(json!({"revision": 9, "tasks": [{
            "taskArn": "arn:aws:ecs:r:a:task/default/t1", "taskDefinitionArn": "arn:td:1",
            "desiredStatus": "STOPPED", "lastStatus": "RUNNING", "version": 3, "launchType": "FARGATE",
            "availabilityZone": "us-east-1a",
            "containers": [{"name": "web", "containerArn": "arn:c:1", "lastStatus": "RUNNING"}, {"name": "side"}]}]}))
        .unwrap();
        let task = &answer.tasks[0];
        assert_eq!((task.id(), task.stop_wanted(), task.last_status), ("t1", true, TaskStatus::Running));
        assert_eq!(
            (task.launch_type.as_deref(), task.availability_zone.as_deref()),
            (Some("FARGATE"), Some("us-east-1a"))
        );
        assert_eq!(
            (task.container_arn("web"), task.container_arn("side"), task.container_arn("x")),
            (Some("arn:c:1"), None, None)
        );
        let bad = json!({"revision": 1, "tasks": [{"taskArn": "t", "taskDefinitionArn": "d",
            "desiredStatus": "RUNNING", "lastStatus": "SLEEPING"}]});
        assert!(serde_json::from_value::<Assignments>(bad).is_err(), "an unknown status is an error");
    }

    fn task(arn: &str, desired: &str) -> AssignedTask {
        serde_json::from_value(json!({"taskArn": arn, "taskDefinitionArn": "d", "desiredStatus": desired,
            "lastStatus": "RUNNING"}))
        .unwrap()
    }

    #[test]
    fn answers_of_changes_merge_into_what_the_agent_holds() {
        let mut held = Assigned::default();
        let whole = Assignments { revision: 3, tasks: vec![task("a", "RUNNING"), task("b", "RUNNING")], live: None };
        assert_eq!(held.merge(whole).len(), 2);
        // b is asked to stop, c arrives, a is unchanged and not sent.
        let changes = Assignments {
            revision: 5,
            tasks: vec![task("b", "STOPPED"), task("c", "RUNNING")],
            live: Some(vec!["a".into(), "b".into(), "c".into()]),
        };
        held.merge(changes);
        let now: Vec<_> = held.all().map(|t| (t.task_arn.as_str(), t.stop_wanted())).collect();
        assert_eq!(now, [("a", false), ("b", true), ("c", false)]);
        // a is gone (stopped by the server before any agent took it).
        held.merge(Assignments { revision: 6, tasks: vec![], live: Some(vec!["b".into(), "c".into()]) });
        assert_eq!(held.all().map(|t| t.task_arn.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        // A whole answer replaces everything.
        held.merge(Assignments { revision: 7, tasks: vec![task("d", "RUNNING")], live: None });
        assert_eq!(held.all().map(|t| t.task_arn.as_str()).collect::<Vec<_>>(), ["d"]);
    }
}
