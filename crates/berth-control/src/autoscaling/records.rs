//! Application Auto Scaling's records: one per scalable target, holding its policies and
//! scheduled actions (so deregistering removes them in the same write, and a scaling
//! decision sees them and the target's cooldown memory together), and one per scaling
//! activity. Keys are `autoscaling/target/REGION/RESOURCE_ID` and
//! `autoscaling/activity/REGION/RESOURCE_ID/SEQUENCE`.

use std::collections::BTreeMap;

use berth_scaling::capacity::StepPolicy;
use berth_scaling::decide::{Recent, Suspended};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keys::Keys;

/// How many activities a target keeps (its newest); AWS shows six weeks of them.
pub const ACTIVITIES_KEPT: u64 = 1000;

/// A metric target tracking follows (the alarms it makes watch it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedMetric {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetTracking {
    pub target_value: f64,
    pub metric: TrackedMetric,
    /// Seconds.
    pub scale_out_cooldown: i64,
    pub scale_in_cooldown: i64,
    pub disable_scale_in: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PolicyConfig {
    StepScaling(StepPolicy),
    TargetTrackingScaling(TargetTracking),
}

impl PolicyConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            PolicyConfig::StepScaling(_) => "StepScaling",
            PolicyConfig::TargetTrackingScaling(_) => "TargetTrackingScaling",
        }
    }
}

/// An alarm a policy made (target tracking) or is named by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRef {
    pub name: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    pub name: String,
    pub arn: String,
    pub config: PolicyConfig,
    /// The configuration object as it was given, as DescribeScalingPolicies shows it.
    pub shown: Value,
    /// The alarms target tracking made for this policy.
    pub alarms: Vec<AlarmRef>,
    pub created: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledRecord {
    pub name: String,
    pub arn: String,
    pub schedule: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub start: Option<f64>,
    #[serde(default)]
    pub end: Option<f64>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    pub created: f64,
    /// When it runs next (ms since the epoch); `None`: never again.
    #[serde(default)]
    pub next_ms: Option<i64>,
}

impl ScheduledRecord {
    /// The schedule, parsed (it was checked when put).
    pub fn parsed(&self) -> Result<berth_scaling::schedule::Schedule, berth_scaling::schedule::ScheduleError> {
        let ms = |t: Option<f64>| t.map(|s| (s * 1000.0).round() as i64);
        berth_scaling::schedule::Schedule::parse(&self.schedule, self.timezone.as_deref(), ms(self.start), ms(self.end))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRecord {
    pub resource_id: String,
    pub arn: String,
    pub min: i64,
    pub max: i64,
    pub role_arn: String,
    pub created: f64,
    pub suspended: Suspended,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The last dynamic scale-out and scale-in, for cooldowns.
    #[serde(default)]
    pub recent: Recent,
    #[serde(default)]
    pub policies: Vec<PolicyRecord>,
    #[serde(default)]
    pub scheduled: Vec<ScheduledRecord>,
    /// The sequence number of the target's last activity.
    #[serde(default)]
    pub activity_seq: u64,
    /// The last not-scaled (or failed) outcome recorded, so an alarm repeating it every
    /// period leaves one activity, not one a period.
    #[serde(default)]
    pub last_not_scaled: Option<String>,
}

impl TargetRecord {
    pub fn policy(&self, name: &str) -> Option<&PolicyRecord> {
        self.policies.iter().find(|p| p.name == name)
    }

    pub fn action(&self, name: &str) -> Option<&ScheduledRecord> {
        self.scheduled.iter().find(|a| a.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityStatus {
    Successful,
    Failed,
}

impl ActivityStatus {
    pub fn name(self) -> &'static str {
        match self {
            ActivityStatus::Successful => "Successful",
            ActivityStatus::Failed => "Failed",
        }
    }
}

/// A `NotScaledReason`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotScaled {
    pub code: String,
    pub min: i64,
    pub max: i64,
    pub current: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityRecord {
    pub id: String,
    pub resource_id: String,
    pub description: String,
    pub cause: String,
    pub start: f64,
    #[serde(default)]
    pub end: Option<f64>,
    pub status: ActivityStatus,
    pub message: String,
    #[serde(default)]
    pub not_scaled: Vec<NotScaled>,
}

/// Every region's scalable targets (`REGION/RESOURCE_ID` beneath).
pub const TARGETS: &str = "autoscaling/target/";
/// Every region's scaling activities (`REGION/RESOURCE_ID/SEQUENCE` beneath).
pub const ACTIVITIES: &str = "autoscaling/activity/";

impl Keys {
    pub fn scalable_targets(&self) -> String {
        format!("{TARGETS}{}/", self.region)
    }

    pub fn scalable_target(&self, resource_id: &str) -> String {
        format!("{TARGETS}{}/{resource_id}", self.region)
    }

    pub fn scaling_activities(&self) -> String {
        format!("{ACTIVITIES}{}/", self.region)
    }

    /// The activities of one target.
    pub fn target_activities(&self, resource_id: &str) -> String {
        format!("{ACTIVITIES}{}/{resource_id}/", self.region)
    }

    /// Zero-padded so key order is the order they happened in.
    pub fn scaling_activity(&self, resource_id: &str, seq: u64) -> String {
        format!("{ACTIVITIES}{}/{resource_id}/{seq:012}", self.region)
    }
}

/// The ARNs Application Auto Scaling writes.
pub mod arns {
    use super::super::NAMESPACE;

    pub fn target(region: &str, account: &str, id: &str) -> String {
        format!("arn:aws:application-autoscaling:{region}:{account}:scalable-target/{id}")
    }

    pub fn policy(region: &str, account: &str, id: &str, resource: &str, name: &str) -> String {
        format!(
            "arn:aws:autoscaling:{region}:{account}:scalingPolicy:{id}:resource/{NAMESPACE}/{resource}:policyName/{name}"
        )
    }

    pub fn scheduled_action(region: &str, account: &str, id: &str, resource: &str, name: &str) -> String {
        format!(
            "arn:aws:autoscaling:{region}:{account}:scheduledAction:{id}:resource/{NAMESPACE}/{resource}:scheduledActionName/{name}"
        )
    }

    /// A scaling policy's ARN as the resource id and policy name it names, when it is one of
    /// this region and account.
    pub fn parse_policy<'a>(arn: &'a str, region: &str, account: &str) -> Option<(&'a str, &'a str)> {
        let rest = arn.strip_prefix(&format!("arn:aws:autoscaling:{region}:{account}:scalingPolicy:"))?;
        let (_, rest) = rest.split_once(":resource/")?;
        let (resource, name) = rest.split_once(":policyName/")?;
        let resource = resource.strip_prefix(&format!("{NAMESPACE}/"))?;
        (!name.is_empty()).then_some((resource, name))
    }

    /// The default `RoleARN`: ECS's service-linked role for Application Auto Scaling.
    pub fn service_linked_role(account: &str) -> String {
        format!(
            "arn:aws:iam::{account}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
        )
    }
}
