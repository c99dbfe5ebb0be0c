//! Before anything runs: the task definition (read from the control plane once per ARN),
//! each container definition turned into a runtime spec plus what the runner itself acts on
//! (`essential`, `dependsOn`, `startTimeout`, `restartPolicy`), the task cgroup, and the scratch
//! directory of task volumes.

use std::time::Duration;

use serde_json::{Map, Value};

use super::metadata::ContainerShown;
use super::{Container, REPORT_RETRY, TaskRun};
use crate::awslogs;
use crate::control::TaskDefinition;
use crate::lifecycle::{Condition, ContainerStatus, Health};
use crate::restart::RestartPolicy;
use crate::spec::{self, Context};

/// The `dependsOn` entries of a container definition.
fn depends_on(def: &Map<String, Value>) -> Vec<(String, Condition)> {
    let entries = def.get("dependsOn").and_then(Value::as_array).into_iter().flatten();
    entries
        .filter_map(|d| Some((d["containerName"].as_str()?.to_string(), Condition::parse(d["condition"].as_str()?)?)))
        .collect()
}

/// `startTimeout`: seconds, counted only when positive.
fn start_timeout(def: &Map<String, Value>) -> Option<Duration> {
    def.get("startTimeout").and_then(Value::as_u64).filter(|s| *s > 0).map(Duration::from_secs)
}

impl TaskRun {
    /// The task definition, from the cache or the control plane (retried while unreachable).
    async fn definition(&self) -> Result<TaskDefinition, String> {
        let arn = &self.task.task_definition_arn;
        if let Some(cached) = self.shared.definitions.lock().expect("definition cache").get(arn) {
            return Ok(cached.clone());
        }
        let definition = loop {
            match self.shared.control.task_definition(arn).await {
                Ok(d) => break d,
                Err(e) if e.is_retryable() => {
                    tracing::warn!(task = %self.arn(), error = %e, "cannot read the task definition yet");
                    tokio::time::sleep(REPORT_RETRY).await;
                }
                Err(e) => return Err(format!("CannotReadTaskDefinitionError: {e}")),
            }
        };
        self.shared.definitions.lock().expect("definition cache").insert(arn.clone(), definition.clone());
        Ok(definition)
    }

    /// Reads the task definition and builds each container, the task cgroup and scratch
    /// directory. `Err` is the reason the task cannot run.
    pub(super) async fn prepare(&mut self) -> Result<(), String> {
        let def = self.definition().await?;
        let volumes = def.get("volumes").and_then(Value::as_array).cloned().unwrap_or_default();
        let definitions = def.get("containerDefinitions").and_then(Value::as_array).cloned().unwrap_or_default();
        let scratch = self.scratch_dir();
        let whole = Value::Object(def.clone());
        let ctx = Context {
            cluster: self.task.cluster(),
            instance_arn: &self.shared.instance_arn,
            task_arn: self.arn(),
            task_id: self.id(),
            network_mode: def.get("networkMode").and_then(Value::as_str).unwrap_or("bridge"),
            volumes: &volumes,
            containers: &definitions,
            scratch_dir: &scratch,
            allow_privileged: self.shared.allow_privileged,
            definition: &whole,
            runtime: spec::oci_runtime(self.task.launch_type.as_deref(), &self.shared.fargate_runtime),
        };
        let overrides = self.task.overrides.as_ref();
        let mut failure = None;
        let mut containers = Vec::new();
        for c in definitions.iter().filter_map(Value::as_object) {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            let mut spec =
                spec::container_spec(&ctx, c, overrides).map_err(|e| failure.get_or_insert(e.0).clone()).ok();
            if let Some(spec) = spec.as_mut() {
                self.shared.metadata.inject(&self.task.task_arn, name, spec);
                // Berth's DNS server answers every container with a network, unless its
                // definition names its own servers.
                if spec.dns.is_empty() && spec.network_mode != "none" {
                    spec.dns = self.shared.dns_servers.clone();
                }
                // Service Connect: each client alias's name is its address on the task's
                // loopback, where the proxy listens.
                if let Some(sc) = &self.task.service_connect {
                    spec.extra_hosts.extend(sc.aliases.iter().map(|a| format!("{}:{}", a.dns_name, a.address)));
                }
            }
            let awslogs = awslogs::of(c).map_err(|e| failure.get_or_insert(e).clone()).ok().flatten();
            containers.push(Container {
                checked: spec.as_ref().is_some_and(|s| s.health.is_some()),
                health: Health::Unknown,
                depends_on: depends_on(c),
                name: name.to_string(),
                essential: c.get("essential").and_then(Value::as_bool).unwrap_or(true),
                spec,
                known: ContainerStatus::None,
                id: None,
                exit_code: None,
                reason: None,
                bindings: Vec::new(),
                start_timeout: start_timeout(c),
                restart: RestartPolicy::of(c),
                started_at: None,
                running_since: None,
                restarts: 0,
                awslogs,
                shipper: None,
                shown: ContainerShown::of(c, overrides),
            });
        }
        self.containers = containers;
        self.shown.family = def.get("family").and_then(Value::as_str).unwrap_or_default().to_string();
        self.shown.revision = def.get("revision").and_then(Value::as_i64).map(|r| r.to_string()).unwrap_or_default();
        self.task_cgroup(&def)?;
        if volumes.iter().any(|v| v.get("host").is_none()) {
            std::fs::create_dir_all(&scratch).map_err(|e| format!("CannotCreateVolumeError: {e}"))?;
        }
        failure.map_or(Ok(()), Err)
    }

    /// One task cgroup around the containers, with the task-level cpu and memory (overrides
    /// first).
    fn task_cgroup(&mut self, def: &TaskDefinition) -> Result<(), String> {
        let task_level = |key: &str, parse: fn(&str) -> Option<u32>| {
            let given = self.task.overrides.as_ref().and_then(|o| o.get(key)).or_else(|| def.get(key));
            given.and_then(Value::as_str).and_then(parse).map(u64::from)
        };
        let cpu = task_level("cpu", berth_model::task_definition::parse_cpu);
        let memory = task_level("memory", berth_model::task_definition::parse_memory);
        (self.shown.cpu, self.shown.memory) = (cpu, memory);
        let parent = self
            .shared
            .cgroups
            .create(self.id(), cpu, memory)
            .map_err(|e| format!("CannotCreateContainerError: task cgroup: {e}"))?;
        for spec in self.containers.iter_mut().filter_map(|c| c.spec.as_mut()) {
            spec.cgroup_parent = Some(parent.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runner_fields_are_read_from_the_container_definition() {
        let def = json!({"name": "web", "startTimeout": 30,
            "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}, {"containerName": "x", "condition": "BOGUS"}]});
        let def = def.as_object().unwrap();
        assert_eq!(depends_on(def), [("db".to_string(), Condition::Healthy)]);
        assert_eq!(start_timeout(def), Some(Duration::from_secs(30)));
        assert_eq!(start_timeout(json!({"startTimeout": 0}).as_object().unwrap()), None);
        assert_eq!(start_timeout(json!({}).as_object().unwrap()), None);
    }
}
