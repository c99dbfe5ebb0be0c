//! What the control plane hears about a task: the claim before anything runs, then a
//! `SubmitTaskStateChange` whenever what it would say changed, retried until heard.

use std::sync::Arc;

use berth_agent_protocol::assignments::AssignedTask;
use berth_agent_protocol::ecs::{ContainerStateChange, SubmitTaskStateChange};
use berth_model::task::TaskStatus;

use super::{Container, REPORT_RETRY, Shared, TaskRun};
use crate::lifecycle::{self, Health};
use crate::spec;

/// The longest reason ECS keeps.
const MAX_REASON: usize = 255;

fn clip(reason: &str) -> String {
    reason.chars().take(MAX_REASON).collect()
}

/// Claims a task no agent has worked on yet: once claimed, only this agent may stop it.
/// `false` if the control plane refused (the task was stopped before the claim).
pub(super) async fn claim(shared: Arc<Shared>, task: AssignedTask) -> bool {
    if !matches!(task.last_status, TaskStatus::Provisioning | TaskStatus::Pending) {
        return true;
    }
    let claim = SubmitTaskStateChange::claim(task.cluster(), &task.task_arn);
    loop {
        match shared.control.submit_task_state(&claim).await {
            Ok(()) => return true,
            Err(e) if e.is_retryable() => {
                tracing::warn!(task = %task.task_arn, error = %e, "claim not delivered; retrying");
                tokio::time::sleep(REPORT_RETRY).await;
            }
            Err(e) => {
                tracing::info!(task = %task.task_arn, error = %e, "task not claimed; leaving it alone");
                return false;
            }
        }
    }
}

fn container_change(c: &Container) -> ContainerStateChange {
    ContainerStateChange {
        container_name: c.name.clone(),
        status: c.known.reported(),
        runtime_id: c.id.clone(),
        exit_code: c.exit_code,
        reason: c.reason.as_deref().map(clip),
        network_bindings: spec::network_bindings(c.spec.as_ref(), &c.bindings),
        health_status: c.checked.then_some(c.health),
    }
}

impl TaskRun {
    /// What the control plane would be told now; `None` before there is anything to say.
    fn state_change(&self) -> Option<SubmitTaskStateChange> {
        let status = self.status();
        if status == TaskStatus::Pending && self.last_report.is_none() && self.pull_started.is_none() {
            return None;
        }
        let health: Vec<(Health, bool, bool)> =
            self.containers.iter().map(|c| (c.health, c.essential, c.checked)).collect();
        let stopped = status == TaskStatus::Stopped;
        Some(SubmitTaskStateChange {
            reason: self.stop_reason.as_deref().filter(|_| stopped).map(clip),
            containers: self.containers.iter().map(container_change).collect(),
            health_status: Some(lifecycle::task_health(&health)),
            pull_started_at: self.pull_started,
            pull_stopped_at: self.pull_stopped,
            execution_stopped_at: stopped.then(|| self.shared.clock.timestamp()),
            status,
            ..SubmitTaskStateChange::claim(self.cluster(), self.arn())
        })
    }

    /// Tells the control plane the task's state when it changed, retrying until heard.
    pub(super) async fn report(&mut self) {
        let Some(change) = self.state_change() else { return };
        let comparable = SubmitTaskStateChange { execution_stopped_at: None, ..change.clone() };
        if self.last_report.as_ref() == Some(&comparable) {
            return;
        }
        loop {
            match self.shared.control.submit_task_state(&change).await {
                Ok(()) => {
                    tracing::debug!(task = %self.id(), status = %change.status.as_str(), "reported");
                    break;
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(task = %self.arn(), error = %e, "report not delivered; retrying");
                    tokio::time::sleep(REPORT_RETRY).await;
                }
                Err(e) => {
                    tracing::warn!(task = %self.arn(), error = %e, "report refused");
                    break;
                }
            }
        }
        self.last_report = Some(comparable);
    }
}
