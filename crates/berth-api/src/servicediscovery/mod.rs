//! Cloud Map (`Route53AutoNaming_v20170314.*`, AWS JSON 1.1, signing name `servicediscovery`):
//! the dispatch table, how failures read (Cloud Map's exception names), and what the handlers
//! share — reading tags, attribute maps and filters, paging, and the JSON of each resource.
//! Records and rules are `berth_control::discovery`'s; one handler module per resource.
//!
//! `DiscoverInstances` and `DiscoverInstancesRevision` carry the endpoint host prefix `data-`
//! in the model: SDKs then call `data-HOST`, which does not resolve for an endpoint like
//! `http://127.0.0.1:8600`. Clients turn the prefix off (boto3:
//! `Config(inject_host_prefix=False)`); see `docs/service-discovery.md`.

mod instances;
mod namespaces;
mod operations;
mod services;
mod tags;

use std::collections::BTreeMap;

use berth_control::ControlError;
use berth_control::discovery::DiscoveryError;
use berth_control::discovery::records::Tag;
use serde_json::{Map, Value, json};

use crate::ecs::{Ctx, Obj, text};
use crate::error::{ApiError, ApiResult};
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Every operation of the model is in the table (the public DNS ones refuse); `InvalidInput`
/// would answer any other.
pub static SERVICE: Service = Service {
    name: "Cloud Map (servicediscovery)",
    model: &shapes::SERVICEDISCOVERY,
    operations: operations! {
        finish: finish;
        "CreatePrivateDnsNamespace" => |ctx, input| namespaces::create_private(ctx, input).await,
        "CreatePublicDnsNamespace" => |_ctx, _input| namespaces::public(),
        "CreateHttpNamespace" => |ctx, input| namespaces::create_http(ctx, input).await,
        "GetNamespace" => |ctx, input| namespaces::get(ctx, input),
        "ListNamespaces" => |ctx, input| namespaces::list(ctx, input),
        "UpdatePrivateDnsNamespace" => |ctx, input| namespaces::update_private(ctx, input).await,
        "UpdatePublicDnsNamespace" => |_ctx, _input| namespaces::public(),
        "UpdateHttpNamespace" => |ctx, input| namespaces::update_http(ctx, input).await,
        "DeleteNamespace" => |ctx, input| namespaces::delete(ctx, input).await,
        "CreateService" => |ctx, input| services::create(ctx, input).await,
        "GetService" => |ctx, input| services::get(ctx, input),
        "ListServices" => |ctx, input| services::list(ctx, input),
        "UpdateService" => |ctx, input| services::update(ctx, input).await,
        "DeleteService" => |ctx, input| services::delete(ctx, input).await,
        "GetServiceAttributes" => |ctx, input| services::get_attributes(ctx, input),
        "UpdateServiceAttributes" => |ctx, input| services::update_attributes(ctx, input).await,
        "DeleteServiceAttributes" => |ctx, input| services::delete_attributes(ctx, input).await,
        "RegisterInstance" => |ctx, input| instances::register(ctx, input).await,
        "DeregisterInstance" => |ctx, input| instances::deregister(ctx, input).await,
        "GetInstance" => |ctx, input| instances::get(ctx, input),
        "ListInstances" => |ctx, input| instances::list(ctx, input),
        "GetInstancesHealthStatus" => |ctx, input| instances::health(ctx, input),
        "UpdateInstanceCustomHealthStatus" => |ctx, input| instances::set_health(ctx, input).await,
        "DiscoverInstances" => |ctx, input| instances::discover(ctx, input),
        "DiscoverInstancesRevision" => |ctx, input| instances::revision(ctx, input),
        "GetOperation" => |ctx, input| operations::get(ctx, input),
        "ListOperations" => |ctx, input| operations::list(ctx, input),
        "TagResource" => |ctx, input| tags::tag(ctx, input).await,
        "UntagResource" => |ctx, input| tags::untag(ctx, input).await,
        "ListTagsForResource" => |ctx, input| tags::list(ctx, input),
    },
    body_limit: 1024 * 1024,
    invalid_input: "InvalidInput",
    unimplemented: "InvalidInput",
    json_bodies: &[],
};

/// A failure of a Cloud Map handler: already an API error, or a domain error still to be
/// worded in Cloud Map's names.
#[derive(Debug)]
pub enum Failure {
    Api(ApiError),
    Control(ControlError),
}

pub type SdResult<T> = Result<T, Failure>;

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        Failure::Control(e)
    }
}

impl From<DiscoveryError> for Failure {
    fn from(e: DiscoveryError) -> Self {
        Failure::Control(e.into())
    }
}

impl From<berth_store::StoreError> for Failure {
    fn from(e: berth_store::StoreError) -> Self {
        Failure::Control(e.into())
    }
}

/// A domain error in Cloud Map's words: its refusals as they are, a lost race as
/// `RequestLimitExceeded` (retry), storage trouble as a 500.
pub fn control_error(e: ControlError) -> ApiError {
    match e {
        ControlError::Discovery(d) => ApiError::new(400, d.code(), d.to_string()),
        ControlError::Contention => ApiError::new(
            400,
            "RequestLimitExceeded",
            "Too many concurrent changes to this resource; retry the request.",
        ),
        ControlError::Store(_) | ControlError::Corrupt { .. } => {
            tracing::error!(error = %e, "cloud map storage failure");
            ApiError::new(500, "InternalFailure", e.to_string())
        }
        other => ApiError::new(400, "InvalidInput", other.to_string()),
    }
}

fn finish(_ctx: &Ctx<'_>, result: SdResult<Value>) -> ApiResult<Value> {
    result.map_err(|f| match f {
        Failure::Api(e) => e,
        Failure::Control(e) => control_error(e),
    })
}

pub fn invalid(message: impl Into<String>) -> Failure {
    DiscoveryError::InvalidInput(message.into()).into()
}

/// The `Tags` list of a request.
pub fn tags_of(input: &Obj) -> Vec<Tag> {
    input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| Tag::new(t["Key"].as_str().unwrap_or_default(), t["Value"].as_str().unwrap_or_default()))
        .collect()
}

pub fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect())
}

/// An attribute map of a request (`Attributes`, `QueryParameters`, ...).
pub fn map_of(input: &Obj, key: &str) -> BTreeMap<String, String> {
    input
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// `MaxResults` (validated by the model) or `default`.
pub fn max_results(input: &Obj, default: usize) -> usize {
    input.get("MaxResults").and_then(Value::as_u64).map(|n| n as usize).unwrap_or(default)
}

/// Keyed items of one page, and the token of the next page.
pub type Page<T> = (Vec<(String, T)>, Option<String>);

/// One page of `items` (in ascending order of their unique keys) after `NextToken`, and the
/// token of the next page. Tokens are the hex of the last key answered.
pub fn page_of<T>(input: &Obj, items: Vec<(String, T)>, limit: usize) -> SdResult<Page<T>> {
    let start = match text(input, "NextToken") {
        None => 0,
        Some(token) => {
            let key = hex::decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid(format!("NextToken '{token}' is not a token this service gave out.")))?;
            items.iter().position(|(k, _)| *k > key).unwrap_or(items.len())
        }
    };
    let total = items.len();
    let chunk: Vec<(String, T)> = items.into_iter().skip(start).take(limit).collect();
    let next = if start + chunk.len() < total { chunk.last().map(|(k, _)| hex::encode(k)) } else { None };
    Ok((chunk, next))
}

/// [`page_of`] answered as `{list: [...], NextToken}`.
pub fn page(input: &Obj, list: &str, items: Vec<(String, Value)>, limit: usize) -> SdResult<Value> {
    let (chunk, next) = page_of(input, items, limit)?;
    let mut out = Map::new();
    out.insert(list.into(), Value::Array(chunk.into_iter().map(|(_, v)| v).collect()));
    if let Some(token) = next {
        out.insert("NextToken".into(), json!(token));
    }
    Ok(Value::Object(out))
}

/// One filter of a List request: its name, values and condition (EQ when omitted).
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
    pub condition: String,
}

impl Filter {
    /// Refuses a condition outside `allowed`, and EQ or BEGINS_WITH with other than one value.
    pub fn check(&self, allowed: &[&str]) -> SdResult<()> {
        if !allowed.contains(&self.condition.as_str()) {
            return Err(invalid(format!(
                "Filter {} takes the condition {}, not {}.",
                self.name,
                allowed.join(" or "),
                self.condition
            )));
        }
        if matches!(self.condition.as_str(), "EQ" | "BEGINS_WITH") && self.values.len() != 1 {
            return Err(invalid(format!("Filter {} with {} takes exactly one value.", self.name, self.condition)));
        }
        if self.values.is_empty() {
            return Err(invalid(format!("Filter {} needs at least one value.", self.name)));
        }
        Ok(())
    }

    /// Whether `value` passes (EQ, IN, BEGINS_WITH).
    pub fn passes(&self, value: &str) -> bool {
        match self.condition.as_str() {
            "BEGINS_WITH" => value.starts_with(self.values[0].as_str()),
            _ => self.values.iter().any(|v| v == value),
        }
    }
}

/// The `Filters` of a request; a filter name given twice is refused.
pub fn filters(input: &Obj) -> SdResult<Vec<Filter>> {
    let mut out: Vec<Filter> = Vec::new();
    for f in input.get("Filters").and_then(Value::as_array).into_iter().flatten() {
        let filter = Filter {
            name: f["Name"].as_str().unwrap_or_default().to_string(),
            values: f["Values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            condition: f["Condition"].as_str().unwrap_or("EQ").to_string(),
        };
        if out.iter().any(|o| o.name == filter.name) {
            return Err(invalid(format!("Filter {} is given twice.", filter.name)));
        }
        out.push(filter);
    }
    Ok(out)
}

/// The `RESOURCE_OWNER` filter: `SELF` keeps everything (every resource is the caller's),
/// `OTHER_ACCOUNTS` nothing (nothing is shared with it).
pub fn owner_keeps(filter: &Filter) -> SdResult<bool> {
    filter.check(&["EQ"])?;
    match filter.values[0].as_str() {
        "SELF" => Ok(true),
        "OTHER_ACCOUNTS" => Ok(false),
        other => Err(invalid(format!("RESOURCE_OWNER is SELF or OTHER_ACCOUNTS, not {other}."))),
    }
}

/// `{"OperationId": ...}`, what every asynchronous change answers.
pub fn operation_answer(op: &berth_control::discovery::OperationRecord) -> Value {
    json!({"OperationId": op.id})
}

#[cfg(test)]
mod tests;
