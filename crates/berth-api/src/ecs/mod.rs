//! ECS operations: the dispatch table, the per-request context, and helpers every handler
//! shares (argument reading, records, paging, optimistic retries). One module per resource.

pub(crate) mod agent;
mod capacity_providers;
mod clusters;
mod container_instances;
mod load_balancers;
mod service_connect;
mod service_registries;
mod services;
mod settings;
mod tags;
mod task_definitions;
mod task_sets;
pub mod tasks;

pub use berth_control::definitions::DefinitionRecord as Registration;
pub use berth_control::placement;

use std::time::SystemTime;

use berth_model::arn;
use berth_store::KeyValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;
use crate::sigv4::Caller;
use berth_control::Region;

pub type Obj = Map<String, Value>;

/// How many times a handler re-reads and retries when a compare-and-swap loses a race.
const MAX_ATTEMPTS: usize = 20;

/// ECS: AWS JSON 1.1, target `AmazonEC2ContainerServiceV20141113`. Operations of the model
/// not in the table answer `UnsupportedFeatureException`.
pub static SERVICE: Service = Service {
    name: "ECS",
    model: &shapes::ECS,
    operations: operations! {
        "CreateCluster" => |ctx, input| clusters::create(ctx, input).await,
        "PutClusterCapacityProviders" => |ctx, input| capacity_providers::put_cluster(ctx, input).await,
        "DescribeCapacityProviders" => |ctx, input| capacity_providers::describe(ctx, input),
        "CreateCapacityProvider" => |ctx, input| capacity_providers::create(ctx, input),
        "UpdateCapacityProvider" => |ctx, input| capacity_providers::update_or_delete(ctx, input),
        "DeleteCapacityProvider" => |ctx, input| capacity_providers::update_or_delete(ctx, input),
        "DeleteCluster" => |ctx, input| clusters::delete(ctx, input).await,
        "DescribeClusters" => |ctx, input| clusters::describe(ctx, input),
        "ListClusters" => |ctx, input| clusters::list(ctx, input),
        "UpdateCluster" => |ctx, input| clusters::update(ctx, input).await,
        "UpdateClusterSettings" => |ctx, input| clusters::update_settings(ctx, input).await,
        "RegisterTaskDefinition" => |ctx, input| task_definitions::register(ctx, input).await,
        "DescribeTaskDefinition" => |ctx, input| task_definitions::describe(ctx, input),
        "ListTaskDefinitions" => |ctx, input| task_definitions::list(ctx, input),
        "ListTaskDefinitionFamilies" => |ctx, input| task_definitions::list_families(ctx, input),
        "DeregisterTaskDefinition" => |ctx, input| task_definitions::deregister(ctx, input).await,
        "DeleteTaskDefinitions" => |ctx, input| task_definitions::delete(ctx, input).await,
        "RegisterContainerInstance" => |ctx, input| container_instances::register(ctx, input).await,
        "DescribeContainerInstances" => |ctx, input| container_instances::describe(ctx, input),
        "ListContainerInstances" => |ctx, input| container_instances::list(ctx, input).await,
        "DeregisterContainerInstance" => |ctx, input| container_instances::deregister(ctx, input).await,
        "UpdateContainerInstancesState" => |ctx, input| container_instances::update_state(ctx, input).await,
        "PutAttributes" => |ctx, input| container_instances::put_attributes(ctx, input).await,
        "ListAttributes" => |ctx, input| container_instances::list_attributes(ctx, input),
        "DeleteAttributes" => |ctx, input| container_instances::delete_attributes(ctx, input).await,
        "RunTask" => |ctx, input| tasks::run(ctx, input).await,
        "StartTask" => |ctx, input| tasks::start(ctx, input).await,
        "StopTask" => |ctx, input| tasks::stop(ctx, input).await,
        "DescribeTasks" => |ctx, input| tasks::describe(ctx, input),
        "ListTasks" => |ctx, input| tasks::list(ctx, input),
        "CreateService" => |ctx, input| services::create(ctx, input).await,
        "UpdateService" => |ctx, input| services::update(ctx, input).await,
        "DeleteService" => |ctx, input| services::delete(ctx, input).await,
        "DescribeServices" => |ctx, input| services::describe(ctx, input),
        "ListServices" => |ctx, input| services::list(ctx, input),
        "ListServicesByNamespace" => |ctx, input| service_registries::list_by_namespace(ctx, input),
        "ListServiceDeployments" => |ctx, input| services::list_deployments(ctx, input),
        "DescribeServiceDeployments" => |ctx, input| services::describe_deployments(ctx, input),
        "StopServiceDeployment" => |ctx, input| services::stop_deployment(ctx, input).await,
        "CreateTaskSet" => |ctx, input| task_sets::create(ctx, input).await,
        "DescribeTaskSets" => |ctx, input| task_sets::describe(ctx, input),
        "UpdateTaskSet" => |ctx, input| task_sets::update(ctx, input).await,
        "UpdateServicePrimaryTaskSet" => |ctx, input| task_sets::update_primary(ctx, input).await,
        "DeleteTaskSet" => |ctx, input| task_sets::delete(ctx, input).await,
        "SubmitTaskStateChange" => |ctx, input| agent::submit_task_state_change(ctx, input).await,
        "SubmitContainerStateChange" => |ctx, input| agent::submit_container_state_change(ctx, input).await,
        "DiscoverPollEndpoint" => |ctx, input| agent::discover_poll_endpoint(ctx, input),
        "TagResource" => |ctx, input| tags::tag(ctx, input).await,
        "UntagResource" => |ctx, input| tags::untag(ctx, input).await,
        "ListTagsForResource" => |ctx, input| tags::list(ctx, input),
        "ListAccountSettings" => |ctx, input| settings::list(ctx, input),
        "PutAccountSetting" => |ctx, input| settings::put(ctx, input, false).await,
        "PutAccountSettingDefault" => |ctx, input| settings::put(ctx, input, true).await,
        "DeleteAccountSetting" => |ctx, input| settings::delete(ctx, input).await,
    },
    // RegisterTaskDefinition has its own, smaller limit (ECS's 64 KiB).
    body_limit: 1024 * 1024,
    invalid_input: "InvalidParameterException",
    unimplemented: "UnsupportedFeatureException",
    json_bodies: &[],
};

/// Runs an ECS operation in-process (the server's own calls, tests).
pub async fn dispatch(ctx: &Ctx<'_>, operation: &str, input: Obj) -> ApiResult<Value> {
    SERVICE.call(ctx, operation, input).await
}

/// One request's view of the world: who asked, and the region it asked in at this moment
/// (the domain's [`Region`], which `Ctx` dereferences to: `ctx.keys`, `ctx.arns`,
/// `ctx.store()`, `ctx.timestamp()`).
pub struct Ctx<'a> {
    pub app: &'a App,
    pub caller: Caller,
    pub region: Region<'a>,
    /// Size of the raw request body (RegisterTaskDefinition enforces ECS's 64 KiB).
    pub body_len: usize,
}

impl<'a> Ctx<'a> {
    pub fn new(app: &'a App, caller: Caller, now: SystemTime, body_len: usize) -> Self {
        let region = app.control.region_at(&caller.region, now);
        Ctx { app, caller, region, body_len }
    }

    /// The IAM principal ECS would name for the caller.
    pub fn principal(&self) -> String {
        format!("arn:aws:iam::{}:root", self.config().account)
    }
}

impl<'a> std::ops::Deref for Ctx<'a> {
    type Target = Region<'a>;

    fn deref(&self) -> &Region<'a> {
        &self.region
    }
}

pub use berth_control::clock::epoch_seconds;

pub fn text<'v>(input: &'v Obj, key: &str) -> Option<&'v str> {
    input.get(key).and_then(Value::as_str)
}

pub use berth_control::store::array;

/// ECS's `failures[]` entry for a resource that does not exist: given by ARN, the ARN as
/// given; given by name or id, the ARN it would have.
pub fn missing(given: &str, arn_of: impl FnOnce(&str) -> String) -> Value {
    let arn = if given.starts_with("arn:") { given.to_string() } else { arn_of(given) };
    serde_json::json!({"arn": arn, "reason": "MISSING"})
}

pub fn strings(input: &Obj, key: &str) -> Vec<String> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The `cluster` argument as a cluster name; ECS uses `default` when it is omitted. An
/// identifier no cluster can have (a bad name, an ARN of another kind) names no cluster:
/// `ClusterNotFoundException`, as for any cluster that does not exist.
pub fn cluster_arg(input: &Obj) -> ApiResult<String> {
    let given = text(input, "cluster").unwrap_or("default");
    arn::cluster_name(given)
        .filter(|n| berth_model::names::is_valid_name(n))
        .map(str::to_string)
        .ok_or_else(ApiError::cluster_not_found)
}

pub fn decode<T: DeserializeOwned>(kv: &KeyValue) -> ApiResult<T> {
    serde_json::from_slice(&kv.value).map_err(|e| ApiError::server(format!("corrupt record {}: {e}", kv.key)))
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

/// An ACTIVE cluster's record, or `ClusterNotFoundException`.
pub fn active_cluster(ctx: &Ctx<'_>, name: &str) -> ApiResult<(KeyValue, Obj)> {
    let kv = ctx.store().get(&ctx.keys.cluster(name))?.ok_or_else(ApiError::cluster_not_found)?;
    let cluster: Obj = decode(&kv)?;
    if cluster.get("status").and_then(Value::as_str) != Some("ACTIVE") {
        return Err(ApiError::cluster_not_found());
    }
    Ok((kv, cluster))
}

/// `maxResults` within 1..=`limit`, or `limit` when omitted.
pub fn max_results(input: &Obj, limit: i64) -> ApiResult<usize> {
    match input.get("maxResults").and_then(Value::as_i64) {
        None => Ok(limit as usize),
        Some(n) if (1..=limit).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!("maxResults must be between 1 and {limit}, got {n}."))),
    }
}

/// One page of `items` (in ascending order of their unique sort keys) after the position
/// `nextToken` names. Tokens are opaque to clients: the hex of the last key.
pub fn page<T>(input: &Obj, items: Vec<(String, T)>, limit: usize) -> ApiResult<(Vec<T>, Option<String>)> {
    page_in_order(input, items, limit, false)
}

/// [`page`] for items in ascending (`descending == false`) or descending key order.
pub fn page_in_order<T>(
    input: &Obj,
    items: Vec<(String, T)>,
    limit: usize,
    descending: bool,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let start = match text(input, "nextToken") {
        None => 0,
        Some(token) => {
            let key = hex::decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::invalid("Invalid nextToken."))?;
            items.iter().position(|(k, _)| *k == key).map(|p| p + 1).unwrap_or_else(|| {
                // The item the token names is gone: resume at the first key past it.
                items.iter().position(|(k, _)| if descending { *k < key } else { *k > key }).unwrap_or(items.len())
            })
        }
    };
    let total = items.len();
    let mut out = Vec::new();
    let mut last_key = None;
    for (key, item) in items.into_iter().skip(start).take(limit) {
        last_key = Some(key);
        out.push(item);
    }
    let next = if start + out.len() < total { last_key.map(hex::encode) } else { None };
    Ok((out, next))
}

/// Adds `nextToken` to a list response when there is more.
pub fn with_token(mut response: Obj, next: Option<String>) -> Value {
    if let Some(t) = next {
        response.insert("nextToken".into(), Value::String(t));
    }
    Value::Object(response)
}

pub fn contention() -> ApiError {
    ApiError::client("Too many concurrent attempts to change this resource. Retry the request.")
}

/// `{key, value}` tags validated as ECS does (at most 50, keys 1-128, values up to 256).
pub fn check_tags(tags: &[Value]) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(ApiError::invalid("A resource can have at most 50 tags."));
    }
    for t in tags {
        let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
        let value = t.get("value").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(ApiError::invalid("Tag keys must be 1-128 characters and values at most 256."));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::invalid("Tag keys may not begin with the reserved prefix 'aws:'."));
        }
    }
    Ok(())
}

/// Merges `new` tags into `existing` (same key: new value wins).
pub fn merge_tags(existing: &mut Vec<Value>, new: &[Value]) {
    for t in new {
        let key = t.get("key");
        existing.retain(|e| e.get("key") != key);
        existing.push(t.clone());
    }
}
