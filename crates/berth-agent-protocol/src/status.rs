//! The statuses agent messages carry, as ECS spells them. Each parses strictly: a status this
//! crate does not know fails the whole message instead of turning into some default.

use berth_model::task::TaskStatus;
use serde::{Deserialize, Serialize};

/// The status of a container as ECS shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    Pending,
    Running,
    Stopped,
}

/// What the control plane wants for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    Pending,
    Running,
    Stopped,
}

/// A container's or a task's health: the model's one health type.
pub use berth_model::health::Health;

/// Serde for the model's [`TaskStatus`] by its ECS name, with an error for a name it does not
/// know (the same as `TaskStatus`'s own serde; kept for `#[serde(with)]` fields).
pub mod task_status {
    use super::*;

    pub fn serialize<S: serde::Serializer>(status: &TaskStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TaskStatus, D::Error> {
        let raw = String::deserialize(d)?;
        TaskStatus::parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("unknown task status {raw:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "task_status")] TaskStatus);

    #[test]
    fn statuses_use_ecs_names_and_refuse_unknown_ones() {
        assert_eq!(serde_json::to_value(ContainerStatus::Running).unwrap(), json!("RUNNING"));
        assert_eq!(serde_json::from_value::<DesiredStatus>(json!("STOPPED")).unwrap(), DesiredStatus::Stopped);
        assert!(serde_json::from_value::<DesiredStatus>(json!("stopped")).is_err());
        assert!(serde_json::from_value::<Health>(json!("SICK")).is_err());
        assert_eq!(serde_json::to_value(Health::Unhealthy).unwrap(), json!(Health::Unhealthy.as_str()));
        for status in TaskStatus::ALL {
            let wire = serde_json::to_value(Wrapped(status)).unwrap();
            assert_eq!(wire, json!(status.as_str()));
            assert_eq!(serde_json::from_value::<Wrapped>(wire).unwrap(), Wrapped(status));
        }
        let unknown = serde_json::from_value::<Wrapped>(json!("WAITING")).unwrap_err();
        assert!(unknown.to_string().contains("unknown task status \"WAITING\""), "{unknown}");
    }
}
