//! Capacity providers: FARGATE and FARGATE_SPOT exist in every account (DescribeCapacityProviders);
//! a cluster names the ones its tasks may use and its default strategy (CreateCluster,
//! PutClusterCapacityProviders); RunTask and CreateService take a strategy, or the cluster's
//! default when they name neither a strategy nor a launch type. Berth has no Auto Scaling
//! groups, so providers of its own cannot be made.

use berth_model::capacity::{PROVIDERS, StrategyItem, parse_strategy};
use berth_store::StoreExt;
use serde_json::{Value, json};

use super::{Ctx, Obj, active_cluster, array, cluster_arg, decode, max_results, page, strings, text, with_token};
use crate::error::{ApiError, ApiResult};
use berth_control::services::{ServiceRecord, ServiceStatus};

/// The strategy of a launch: the one given, else the cluster's default when no launch type is
/// given either. `Ok(None)`: the launch uses its launch type.
pub fn of_launch(cluster: &Obj, input: &Obj) -> ApiResult<Option<Vec<StrategyItem>>> {
    let given = array(input, "capacityProviderStrategy");
    if !given.is_empty() && text(input, "launchType").is_some() {
        return Err(ApiError::invalid(
            "Specifying both a launch type and capacity provider strategy is not supported.",
        ));
    }
    let strategy = if !given.is_empty() {
        given
    } else if text(input, "launchType").is_none() {
        array(cluster, "defaultCapacityProviderStrategy")
    } else {
        return Ok(None);
    };
    if strategy.is_empty() {
        return Ok(None);
    }
    let items = parse_strategy(&strategy)?;
    let associated = strings(cluster, "capacityProviders");
    if items.iter().any(|i| !associated.contains(&i.capacity_provider)) {
        return Err(not_associated());
    }
    Ok(Some(items))
}

fn not_associated() -> ApiError {
    ApiError::invalid(
        "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
    )
}

/// A cluster's `capacityProviders` and `defaultCapacityProviderStrategy`, checked: known
/// providers, each once, and a default strategy within them (with its `weight` and `base`).
pub fn check_cluster(input: &Obj) -> ApiResult<(Vec<String>, Vec<Value>)> {
    let providers = strings(input, "capacityProviders");
    for (n, p) in providers.iter().enumerate() {
        if !PROVIDERS.contains(&p.as_str()) {
            return Err(ApiError::invalid(format!(
                "The specified capacity provider {p} does not exist. Berth has the FARGATE and FARGATE_SPOT capacity providers."
            )));
        }
        if providers[..n].contains(p) {
            return Err(ApiError::invalid(format!("The capacity provider {p} is named twice.")));
        }
    }
    let items = parse_strategy(&array(input, "defaultCapacityProviderStrategy"))?;
    if items.iter().any(|i| !providers.contains(&i.capacity_provider)) {
        return Err(not_associated());
    }
    // Stored with every member, as ECS shows it.
    let default = items.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect();
    Ok((providers, default))
}

fn render(ctx: &Ctx<'_>, name: &str) -> Value {
    json!({"capacityProviderArn": ctx.arns.capacity_provider(name), "name": name, "status": "ACTIVE", "tags": []})
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    check_cluster_member(ctx, &input)?;
    let limit = max_results(&input, 10)?;
    let wanted = strings(&input, "capacityProviders");
    if !wanted.is_empty() {
        let (mut found, mut failures) = (Vec::new(), Vec::new());
        for given in wanted {
            let name = given.rsplit('/').next().unwrap_or_default();
            match PROVIDERS.iter().find(|p| **p == name) {
                Some(p) => found.push(render(ctx, p)),
                None => failures.push(json!({"arn": given, "reason": "MISSING"})),
            }
        }
        return Ok(json!({"capacityProviders": found, "failures": failures}));
    }
    let items: Vec<(String, Value)> = PROVIDERS.iter().map(|p| (p.to_string(), render(ctx, p))).collect();
    let (providers, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("capacityProviders".into(), Value::Array(providers));
    out.insert("failures".into(), json!([]));
    Ok(with_token(out, next))
}

/// A `cluster` member (Managed Instances providers belong to one) must name an active cluster.
fn check_cluster_member(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<()> {
    if input.contains_key("cluster") {
        active_cluster(ctx, &cluster_arg(input)?)?;
    }
    Ok(())
}

/// Providers of one's own need Auto Scaling groups, which Berth does not have.
pub fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    check_cluster_member(ctx, &input)?;
    let name = text(&input, "name").unwrap_or_default();
    if PROVIDERS.contains(&name) || name.to_lowercase().starts_with("fargate") {
        return Err(ApiError::invalid("The capacity provider name cannot start with 'aws', 'ecs' or 'fargate'."));
    }
    Err(unsupported())
}

fn unsupported() -> ApiError {
    ApiError::new(
        400,
        "UnsupportedFeatureException",
        "Berth has no Auto Scaling groups: only the FARGATE and FARGATE_SPOT capacity providers exist.",
    )
}

/// FARGATE and FARGATE_SPOT belong to the account and cannot be changed or deleted.
pub fn update_or_delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    check_cluster_member(ctx, &input)?;
    let given = text(&input, "capacityProvider").or_else(|| text(&input, "name")).unwrap_or_default();
    let name = given.rsplit('/').next().unwrap_or_default();
    if PROVIDERS.contains(&name) {
        return Err(ApiError::client(format!(
            "The {name} capacity provider is managed by Berth and cannot be changed."
        )));
    }
    Err(ApiError::client(format!("The specified capacity provider {given} does not exist.")))
}

/// PutClusterCapacityProviders: replaces the cluster's providers and default strategy; a
/// provider a service's strategy names cannot be removed.
pub async fn put_cluster(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = cluster_arg(&input)?;
    let (providers, default) = check_cluster(&input)?;
    active_cluster(ctx, &name)?;
    for kv in ctx.store().list(&ctx.keys.services(&name))? {
        let service: ServiceRecord = decode(&kv)?;
        if service.status == ServiceStatus::Inactive {
            continue;
        }
        let used = array(&service.service, "capacityProviderStrategy");
        if used.iter().filter_map(|i| i["capacityProvider"].as_str()).any(|p| !providers.iter().any(|k| k == p)) {
            return Err(ApiError::new(
                400,
                "ResourceInUseException",
                "The specified capacity provider is in use and cannot be removed.",
            ));
        }
    }
    super::clusters::modify(ctx, &name, |cluster| {
        cluster.insert("capacityProviders".into(), json!(providers));
        cluster.insert("defaultCapacityProviderStrategy".into(), Value::Array(default.clone()));
    })
    .await
}
