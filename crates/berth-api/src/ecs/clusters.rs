//! Clusters: CreateCluster, DescribeClusters, ListClusters, DeleteCluster, UpdateCluster,
//! UpdateClusterSettings. Counts are computed from the tasks, instances and services that
//! exist, so they are always true.

use berth_model::names::is_valid_name;
use berth_store::{Compare, Op, StoreExt, Txn};
use serde_json::{Value, json};

use super::array;
use super::{
    Ctx, Obj, active_cluster, check_tags, cluster_arg, decode, encode, max_results, page, strings, text, with_token,
};
use crate::error::{ApiError, ApiResult};
use berth_control::records::{InstanceRecord, InstanceStatus, TaskRecord};
use berth_control::services::{ServiceRecord, ServiceStatus};
use berth_control::store::retry;

/// What a cluster holds right now: instances ACTIVE or DRAINING, tasks RUNNING and
/// pending by launch type, services ACTIVE and DRAINING by launch type.
#[derive(Debug, Default)]
struct Counts {
    instances: usize,
    tasks: ByLaunchType<[usize; 2]>,
    services: ByLaunchType<[usize; 2]>,
}

/// A pair of counts per launch type (Berth runs only EC2 so far; the others stay 0).
#[derive(Debug, Default)]
struct ByLaunchType<T> {
    ec2: T,
    fargate: T,
    external: T,
}

impl ByLaunchType<[usize; 2]> {
    fn add(&mut self, launch_type: Option<&str>, which: usize) {
        let slot = match launch_type {
            Some("FARGATE") => &mut self.fargate,
            Some("EXTERNAL") => &mut self.external,
            _ => &mut self.ec2,
        };
        slot[which] += 1;
    }

    fn total(&self, which: usize) -> usize {
        self.ec2[which] + self.fargate[which] + self.external[which]
    }
}

/// Indexes into the count pairs.
const RUNNING: usize = 0;
const PENDING: usize = 1;
const ACTIVE: usize = 0;
const DRAINING: usize = 1;

fn counts(ctx: &Ctx<'_>, name: &str) -> ApiResult<Counts> {
    let mut c = Counts::default();
    for kv in ctx.store().list(&ctx.keys.instances(name))? {
        let rec: InstanceRecord = decode(&kv)?;
        if rec.status != InstanceStatus::Inactive {
            c.instances += 1;
        }
    }
    for kv in ctx.store().list(&ctx.keys.tasks(name))? {
        let rec: TaskRecord = decode(&kv)?;
        let status = rec.last_status;
        if status.is_running() {
            c.tasks.add(rec.field("launchType"), RUNNING);
        } else if status.is_pending() {
            c.tasks.add(rec.field("launchType"), PENDING);
        }
    }
    for kv in ctx.store().list(&ctx.keys.services(name))? {
        let service: ServiceRecord = decode(&kv)?;
        let launch_type = service.service.get("launchType").and_then(Value::as_str);
        match service.status {
            ServiceStatus::Active => c.services.add(launch_type, ACTIVE),
            ServiceStatus::Draining => c.services.add(launch_type, DRAINING),
            _ => {}
        }
    }
    Ok(c)
}

/// ECS's `statistics`, in the order ECS lists them.
fn statistics(c: &Counts) -> Value {
    let (t, s) = (&c.tasks, &c.services);
    let stats = [
        ("runningEC2TasksCount", t.ec2[RUNNING]),
        ("runningFargateTasksCount", t.fargate[RUNNING]),
        ("pendingEC2TasksCount", t.ec2[PENDING]),
        ("pendingFargateTasksCount", t.fargate[PENDING]),
        ("runningExternalTasksCount", t.external[RUNNING]),
        ("pendingExternalTasksCount", t.external[PENDING]),
        ("activeEC2ServiceCount", s.ec2[ACTIVE]),
        ("activeFargateServiceCount", s.fargate[ACTIVE]),
        ("drainingEC2ServiceCount", s.ec2[DRAINING]),
        ("drainingFargateServiceCount", s.fargate[DRAINING]),
        ("activeExternalServiceCount", s.external[ACTIVE]),
        ("drainingExternalServiceCount", s.external[DRAINING]),
    ];
    stats.iter().map(|(name, v)| json!({"name": name, "value": v.to_string()})).collect()
}

/// The cluster as ECS returns it; `include` adds SETTINGS, CONFIGURATIONS, TAGS, STATISTICS,
/// ATTACHMENTS.
fn render(ctx: &Ctx<'_>, mut cluster: Obj, include: &[String]) -> ApiResult<Value> {
    let name = text(&cluster, "clusterName").unwrap_or_default().to_string();
    let active = text(&cluster, "status") == Some("ACTIVE");
    let c = if active { counts(ctx, &name)? } else { Counts::default() };
    cluster.insert("registeredContainerInstancesCount".into(), json!(c.instances));
    cluster.insert("runningTasksCount".into(), json!(c.tasks.total(RUNNING)));
    cluster.insert("pendingTasksCount".into(), json!(c.tasks.total(PENDING)));
    cluster.insert("activeServicesCount".into(), json!(c.services.total(ACTIVE)));
    let wants = |what: &str| include.iter().any(|i| i == what);
    cluster.insert("statistics".into(), if wants("STATISTICS") { statistics(&c) } else { json!([]) });
    if !wants("TAGS") {
        cluster.insert("tags".into(), json!([]));
    }
    if !wants("SETTINGS") {
        cluster.remove("settings");
    }
    if !wants("CONFIGURATIONS") {
        cluster.remove("configuration");
    }
    if wants("ATTACHMENTS") {
        // ECS lists a cluster's capacity providers' resources (Auto Scaling plans) here, with
        // attachmentsStatus telling how their last update went. Berth has no capacity
        // providers: no attachments, and no update to report on.
        cluster.insert("attachments".into(), json!([]));
    }
    Ok(Value::Object(cluster))
}

/// What CreateCluster and the update calls return: the cluster with its settings,
/// configuration and tags.
const WRITE_VIEW: [&str; 3] = ["SETTINGS", "CONFIGURATIONS", "TAGS"];

fn check_settings(settings: &[Value]) -> ApiResult<()> {
    for s in settings {
        let value = s.get("value").and_then(Value::as_str).unwrap_or_default();
        if !matches!(value, "enabled" | "disabled" | "enhanced") {
            return Err(ApiError::invalid(format!(
                "Invalid value '{value}' for cluster setting containerInsights. Valid values: enabled, disabled, enhanced."
            )));
        }
    }
    Ok(())
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = text(&input, "clusterName").unwrap_or("default").to_string();
    if !is_valid_name(&name) {
        return Err(ApiError::invalid(
            "Cluster name must be 1-255 characters: letters (upper and lower case), numbers, hyphens and underscores.",
        ));
    }
    let tags = array(&input, "tags");
    check_tags(&tags)?;
    let (providers, default_strategy) = super::capacity_providers::check_cluster(&input)?;
    let mut settings = array(&input, "settings");
    check_settings(&settings)?;
    // A cluster created without the setting gets the account's containerInsights setting.
    if !settings.iter().any(|s| s["name"] == "containerInsights") {
        let value = super::settings::effective(ctx, "containerInsights")?;
        settings.push(json!({"name": "containerInsights", "value": value}));
    }
    let key = ctx.keys.cluster(&name);
    let (input, key, name, settings, tags) = (&input, &key, &name, &settings, &tags);
    let (providers, default_strategy) = (&providers, &default_strategy);
    retry(move || async move {
        let existing = ctx.store().get(key)?;
        if let Some(kv) = &existing {
            let cluster: Obj = decode(kv)?;
            if text(&cluster, "status") == Some("ACTIVE") {
                return Ok(Some(json!({"cluster": render(ctx, cluster, &WRITE_VIEW.map(String::from))?})));
            }
        }
        let mut cluster = Obj::new();
        cluster.insert("clusterArn".into(), json!(ctx.arns.cluster(name)));
        cluster.insert("clusterName".into(), json!(name));
        cluster.insert("status".into(), json!("ACTIVE"));
        cluster.insert("settings".into(), Value::Array(settings.clone()));
        cluster.insert("tags".into(), Value::Array(tags.clone()));
        for field in ["configuration", "serviceConnectDefaults"] {
            if let Some(v) = input.get(field) {
                cluster.insert(field.into(), v.clone());
            }
        }
        cluster.insert("capacityProviders".into(), json!(providers));
        cluster.insert("defaultCapacityProviderStrategy".into(), Value::Array(default_strategy.clone()));
        let txn = Txn::new()
            .when(vec![Compare::unchanged(key, existing.map(|kv| kv.mod_revision).unwrap_or(0))])
            .and_then(vec![Op::put(key, encode(&cluster)), Op::put(&ctx.keys.region(), Vec::new())]);
        if ctx.store().txn(txn).await?.succeeded {
            return Ok(Some(json!({"cluster": render(ctx, cluster, &WRITE_VIEW.map(String::from))?})));
        }
        Ok(None)
    })
    .await
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let mut wanted = strings(&input, "clusters");
    if wanted.is_empty() {
        wanted.push("default".into());
    }
    let include = strings(&input, "include");
    let (mut clusters, mut failures) = (Vec::new(), Vec::new());
    for given in wanted {
        let Some(name) = berth_model::arn::cluster_name(&given).filter(|n| is_valid_name(n)) else {
            failures.push(json!({"arn": given, "reason": "MISSING"}));
            continue;
        };
        match ctx.store().get(&ctx.keys.cluster(name))? {
            Some(kv) => clusters.push(render(ctx, decode(&kv)?, &include)?),
            None => failures.push(json!({"arn": ctx.arns.cluster(name), "reason": "MISSING"})),
        }
    }
    Ok(json!({"clusters": clusters, "failures": failures}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let limit = max_results(&input, 100)?;
    let mut items = Vec::new();
    for kv in ctx.store().list(&ctx.keys.clusters())? {
        let cluster: Obj = decode(&kv)?;
        if text(&cluster, "status") == Some("ACTIVE") {
            items.push((kv.key.clone(), cluster.get("clusterArn").cloned().unwrap_or_default()));
        }
    }
    let (arns, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("clusterArns".into(), Value::Array(arns));
    Ok(with_token(out, next))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = cluster_arg(&input)?;
    let key = ctx.keys.cluster(&name);
    let (key, name) = (&key, &name);
    retry(move || async move {
        let Some(kv) = ctx.store().get(key)? else {
            return Err(ApiError::cluster_not_found());
        };
        let mut cluster: Obj = decode(&kv)?;
        if text(&cluster, "status") != Some("ACTIVE") {
            return Ok(Some(json!({"cluster": render(ctx, cluster, &[])?})));
        }
        let seen = ctx.store().revision()?;
        let c = counts(ctx, name)?;
        if c.instances > 0 {
            return Err(ApiError::new(
                400,
                "ClusterContainsContainerInstancesException",
                "The Cluster cannot be deleted while Container Instances are active or draining.",
            ));
        }
        if c.services.total(ACTIVE) + c.services.total(DRAINING) > 0 {
            return Err(ApiError::new(
                400,
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        if has_unfinished_tasks(ctx, name)? {
            return Err(ApiError::new(
                400,
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        cluster.insert("status".into(), json!("INACTIVE"));
        let txn = Txn::new()
            .when(vec![
                Compare::unchanged(key, kv.mod_revision),
                Compare::prefix_unchanged_since(&ctx.keys.tasks(name), seen),
                Compare::prefix_unchanged_since(&ctx.keys.instances(name), seen),
                Compare::prefix_unchanged_since(&ctx.keys.services(name), seen),
            ])
            .and_then(vec![Op::put(key, encode(&cluster))]);
        if ctx.store().txn(txn).await?.succeeded {
            return Ok(Some(json!({"cluster": render(ctx, cluster, &[])?})));
        }
        Ok(None)
    })
    .await
}

/// Tasks past RUNNING but not yet STOPPED still hold the cluster.
fn has_unfinished_tasks(ctx: &Ctx<'_>, name: &str) -> ApiResult<bool> {
    for kv in ctx.store().list(&ctx.keys.tasks(name))? {
        let rec: TaskRecord = decode(&kv)?;
        if rec.last_status != berth_model::task::TaskStatus::Stopped {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Applies `change` to an ACTIVE cluster under compare-and-swap.
pub(super) async fn modify(ctx: &Ctx<'_>, name: &str, change: impl Fn(&mut Obj)) -> ApiResult<Value> {
    let key = ctx.keys.cluster(name);
    let (change, key) = (&change, &key);
    retry(move || async move {
        let (kv, mut cluster) = active_cluster(ctx, name)?;
        change(&mut cluster);
        let txn = Txn::new()
            .when(vec![Compare::unchanged(key, kv.mod_revision)])
            .and_then(vec![Op::put(key, encode(&cluster))]);
        if ctx.store().txn(txn).await?.succeeded {
            return Ok(Some(json!({"cluster": render(ctx, cluster, &WRITE_VIEW.map(String::from))?})));
        }
        Ok(None)
    })
    .await
}

fn merge_settings(cluster: &mut Obj, settings: &[Value]) {
    let mut current = cluster.get("settings").and_then(Value::as_array).cloned().unwrap_or_default();
    for s in settings {
        current.retain(|c| c.get("name") != s.get("name"));
        current.push(s.clone());
    }
    cluster.insert("settings".into(), Value::Array(current));
}

pub async fn update(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = cluster_arg(&input)?;
    let settings = array(&input, "settings");
    check_settings(&settings)?;
    modify(ctx, &name, |cluster| {
        merge_settings(cluster, &settings);
        for field in ["configuration", "serviceConnectDefaults"] {
            if let Some(v) = input.get(field) {
                cluster.insert(field.into(), v.clone());
            }
        }
    })
    .await
}

pub async fn update_settings(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = cluster_arg(&input)?;
    let settings = array(&input, "settings");
    check_settings(&settings)?;
    modify(ctx, &name, |cluster| merge_settings(cluster, &settings)).await
}
