//! A service's record: the ECS `Service` object a client sees, the scheduler's memory
//! (deployments, task sets, back-off) and the counts of its last pass, kept together so one
//! compare-and-swap covers them all.

use std::collections::BTreeMap;

use berth_scheduler::{Controller, Scheduling, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::Ids;
use crate::store::Obj;

/// How many events a service keeps (ECS shows the newest 100).
pub const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    /// The ECS `Service` object, without `deployments` (rendered from `scheduler`).
    pub service: Obj,
    pub scheduler: State,
    /// Per deployment id: desired, running and pending counts from the scheduler's last pass.
    #[serde(default)]
    pub counts: BTreeMap<String, [u32; 3]>,
    #[serde(default)]
    pub client_token: Option<String>,
}

impl ServiceRecord {
    pub fn status(&self) -> &str {
        self.service.get("status").and_then(Value::as_str).unwrap_or("ACTIVE")
    }

    pub fn name(&self) -> &str {
        self.service.get("serviceName").and_then(Value::as_str).unwrap_or_default()
    }

    /// Who makes the service's deployments (`deploymentController.type`).
    pub fn controller(&self) -> Controller {
        match self.field("/deploymentController/type").and_then(Value::as_str) {
            Some("EXTERNAL") => Controller::External,
            Some("CODE_DEPLOY") => Controller::CodeDeploy,
            _ => Controller::Ecs,
        }
    }

    pub fn scheduling(&self) -> Scheduling {
        match self.service.get("schedulingStrategy").and_then(Value::as_str) {
            Some("DAEMON") => Scheduling::Daemon,
            _ => Scheduling::Replica,
        }
    }

    /// A field of the service by JSON pointer (`/deploymentConfiguration/maximumPercent`).
    pub fn field(&self, pointer: &str) -> Option<&Value> {
        let mut parts = pointer.trim_start_matches('/').split('/');
        let mut v = self.service.get(parts.next()?);
        for p in parts {
            v = v?.get(p);
        }
        v
    }

    pub fn int(&self, pointer: &str) -> Option<i64> {
        self.field(pointer).and_then(Value::as_i64)
    }

    /// Prepends events (given oldest first), keeping the newest [`MAX_EVENTS`]. A message
    /// equal to the newest one is not repeated.
    pub fn tell(&mut self, messages: &[String], now: f64, ids: &dyn Ids) {
        let events = self.service.entry("events").or_insert_with(|| json!([]));
        let list = events.as_array_mut().expect("events is a list");
        for m in messages {
            if list.first().and_then(|e| e["message"].as_str()) == Some(m) {
                continue;
            }
            list.insert(0, json!({"id": ids.uuid(), "createdAt": now, "message": m}));
        }
        list.truncate(MAX_EVENTS);
    }

    pub fn cluster(&self) -> String {
        let arn = self.service.get("clusterArn").and_then(Value::as_str).unwrap_or_default();
        arn.rsplit('/').next().unwrap_or_default().to_string()
    }
}
