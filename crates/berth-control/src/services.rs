//! A service's record: the ECS `Service` object a client sees, the scheduler's memory
//! (deployments, task sets, back-off) and the counts of its last pass, kept together so one
//! compare-and-swap covers them all.

use std::collections::BTreeMap;

use berth_scheduler::{Controller, Scheduling, State, Strategy};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::Ids;
use crate::store::Obj;

/// Why a desired count cannot be set, in ECS's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DesiredCountError {
    #[error("The daemon scheduling strategy does not support a desired count for services.")]
    Daemon,
    #[error("desiredCount must be 0 or more.")]
    Negative,
}

/// How many events a service keeps (ECS shows the newest 100).
pub const MAX_EVENTS: usize = 100;

/// ECS `Service.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    Active,
    /// Deleted: its tasks are stopping.
    Draining,
    /// Deleted and drained: describable, not listed, its name free again.
    Inactive,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Active => "ACTIVE",
            ServiceStatus::Draining => "DRAINING",
            ServiceStatus::Inactive => "INACTIVE",
        }
    }

    pub fn parse(s: &str) -> Option<ServiceStatus> {
        [ServiceStatus::Active, ServiceStatus::Draining, ServiceStatus::Inactive].into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "StoredService")]
pub struct ServiceRecord {
    /// The ECS `Service` object, without `status` and `deployments` (rendered from the fields
    /// here).
    pub service: Obj,
    pub status: ServiceStatus,
    pub scheduler: State,
    /// Per deployment id: desired, running and pending counts from the scheduler's last pass.
    #[serde(default)]
    pub counts: BTreeMap<String, [u32; 3]>,
    #[serde(default)]
    pub client_token: Option<String>,
}

/// How a service record is read: older records kept `status` inside the ECS object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredService {
    service: Obj,
    status: Option<ServiceStatus>,
    scheduler: State,
    #[serde(default)]
    counts: BTreeMap<String, [u32; 3]>,
    #[serde(default)]
    client_token: Option<String>,
}

impl TryFrom<StoredService> for ServiceRecord {
    type Error = String;

    fn try_from(s: StoredService) -> Result<Self, String> {
        let mut service = s.service;
        let legacy = match service.remove("status") {
            Some(Value::String(raw)) => {
                Some(ServiceStatus::parse(&raw).ok_or(format!("unknown service status {raw:?}"))?)
            }
            _ => None,
        };
        let status = s.status.or(legacy).ok_or("a service record without a status")?;
        Ok(ServiceRecord { service, status, scheduler: s.scheduler, counts: s.counts, client_token: s.client_token })
    }
}

impl ServiceRecord {
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

    /// Where the service's tasks run: FARGATE with a capacity provider strategy, else its
    /// `launchType` (EC2 when absent).
    pub fn launch_type(&self) -> berth_model::launch::LaunchType {
        if !self.strategy().is_empty() {
            return berth_model::launch::LaunchType::Fargate;
        }
        let given = self.service.get("launchType").and_then(Value::as_str);
        given.and_then(berth_model::launch::LaunchType::parse).unwrap_or_default()
    }

    /// The service's capacity provider strategy (checked when it was created).
    pub fn strategy(&self) -> Vec<berth_model::capacity::StrategyItem> {
        let items = self.service.get("capacityProviderStrategy").and_then(Value::as_array);
        items.and_then(|i| berth_model::capacity::parse_strategy(i).ok()).unwrap_or_default()
    }

    /// How new deployments roll out (`deploymentConfiguration.strategy` and its settings, as
    /// checked when the service was created or updated), and the bake time in seconds.
    pub fn deployment_strategy(&self) -> (Strategy, f64) {
        let num = |p: &str| self.field(p).and_then(Value::as_f64).unwrap_or(0.0);
        let minutes = |p: &str| num(p) * 60.0;
        let strategy = match self.field("/deploymentConfiguration/strategy").and_then(Value::as_str) {
            Some("BLUE_GREEN") => Strategy::BlueGreen,
            Some("LINEAR") => Strategy::Linear {
                step_percent: num("/deploymentConfiguration/linearConfiguration/stepPercent"),
                step_bake: minutes("/deploymentConfiguration/linearConfiguration/stepBakeTimeInMinutes"),
            },
            Some("CANARY") => Strategy::Canary {
                canary_percent: num("/deploymentConfiguration/canaryConfiguration/canaryPercent"),
                canary_bake: minutes("/deploymentConfiguration/canaryConfiguration/canaryBakeTimeInMinutes"),
            },
            _ => Strategy::Rolling,
        };
        (strategy, minutes("/deploymentConfiguration/bakeTimeInMinutes"))
    }

    /// Starts a new deployment as the primary, the way the service's strategy rolls it out.
    pub fn start_deployment(&mut self, d: berth_scheduler::Deployment) {
        let (strategy, _) = self.deployment_strategy();
        self.scheduler.start_deployment(d, strategy);
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
        // Only the newest MAX_EVENTS can stay (a pass that started 20,000 tasks tells 2,000).
        for m in &messages[messages.len().saturating_sub(MAX_EVENTS)..] {
            if list.first().and_then(|e| e["message"].as_str()) == Some(m) {
                continue;
            }
            list.insert(0, json!({"id": ids.uuid(), "createdAt": now, "message": m}));
        }
        list.truncate(MAX_EVENTS);
    }

    /// Sets how many tasks the service keeps (`desiredCount`), as UpdateService does and
    /// Application Auto Scaling does through it; the scheduler takes it up on its next pass
    /// (wake it once the record is written).
    pub fn set_desired(&mut self, count: i64) -> Result<(), DesiredCountError> {
        if self.scheduling() == Scheduling::Daemon {
            return Err(DesiredCountError::Daemon);
        }
        if count < 0 {
            return Err(DesiredCountError::Negative);
        }
        self.service.insert("desiredCount".into(), json!(count));
        self.scheduler.steady = false;
        Ok(())
    }

    /// `desiredCount`.
    pub fn desired(&self) -> i64 {
        self.int("/desiredCount").unwrap_or(0)
    }

    pub fn cluster(&self) -> String {
        let arn = self.service.get("clusterArn").and_then(Value::as_str).unwrap_or_default();
        arn.rsplit('/').next().unwrap_or_default().to_string()
    }
}
