//! Health as ECS reports it for containers and tasks: one type for the agent that measures
//! it, the control plane that records it and the scheduler that acts on it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    /// No health check, or none has decided yet.
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "UNKNOWN",
            Health::Healthy => "HEALTHY",
            Health::Unhealthy => "UNHEALTHY",
        }
    }

    pub fn parse(s: &str) -> Option<Health> {
        [Health::Unknown, Health::Healthy, Health::Unhealthy].into_iter().find(|h| h.as_str() == s)
    }

    /// A task's health from its containers': any unhealthy makes it unhealthy; it is healthy
    /// only when every container with a check is healthy (ECS's rule, for essential ones).
    pub fn of_task(containers: impl IntoIterator<Item = Health>) -> Health {
        let mut seen = false;
        let mut all_healthy = true;
        for h in containers {
            match h {
                Health::Unhealthy => return Health::Unhealthy,
                Health::Healthy => seen = true,
                Health::Unknown => all_healthy = false,
            }
        }
        if seen && all_healthy { Health::Healthy } else { Health::Unknown }
    }
}
