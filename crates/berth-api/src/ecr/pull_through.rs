//! CreatePullThroughCacheRule, DescribePullThroughCacheRules, UpdatePullThroughCacheRule,
//! DeletePullThroughCacheRule and ValidatePullThroughCacheRule. The rules act on `/v2/`
//! pulls (see `berth_registry::pull_through`).

use berth_registry::pull_through::known_upstream;
use berth_registry::templates::valid_prefix;
use berth_registry::upstream::parse_url;
use serde_json::{Value, json};

use super::errors::{EcrResult, invalid_at};
use super::{check_registry, scope};
use crate::ecs::{Ctx, Obj, max_results, page, strings, text, with_token};

/// The members of a rule each response carries (others are left out).
fn view(rule: &Value, members: &[&str]) -> Value {
    let mut out = json!({});
    for m in members {
        if let Some(v) = rule.get(*m) {
            out[*m] = v.clone();
        }
    }
    out
}

/// What CreatePullThroughCacheRule answers; DescribePullThroughCacheRules adds `updatedAt`.
const CREATED: &[&str] = &[
    "ecrRepositoryPrefix",
    "upstreamRegistryUrl",
    "createdAt",
    "registryId",
    "credentialArn",
    "upstreamRegistry",
    "upstreamRepositoryPrefix",
];

/// The `ecrRepositoryPrefix` argument, after the checks every operation makes.
fn prefix_arg(ctx: &Ctx<'_>, input: &Obj, member: &str) -> EcrResult<String> {
    check_registry(ctx, input)?;
    if input.contains_key("customRoleArn") {
        return Err(invalid_at("customRoleArn", "Berth has no IAM roles; customRoleArn is not supported"));
    }
    let prefix = text(input, member).unwrap_or_default();
    if !valid_prefix(prefix) {
        return Err(invalid_at(member, &format!("'{prefix}' must be ROOT or a repository name prefix")));
    }
    Ok(prefix.to_string())
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let prefix = prefix_arg(ctx, &input, "ecrRepositoryPrefix")?;
    if input.contains_key("upstreamRepositoryPrefix") {
        prefix_arg(ctx, &input, "upstreamRepositoryPrefix")?;
    }
    let url = text(&input, "upstreamRegistryUrl").unwrap_or_default();
    let mut rule = json!({"ecrRepositoryPrefix": prefix, "upstreamRegistryUrl": url,
        "registryId": ctx.config().account, "createdAt": ctx.timestamp(), "updatedAt": ctx.timestamp()});
    let kind = text(&input, "upstreamRegistry")
        .map(str::to_string)
        .or_else(|| parse_url(url, false).ok().and_then(|(host, _)| known_upstream(&host)).map(str::to_string));
    if let Some(kind) = kind {
        rule["upstreamRegistry"] = json!(kind);
    }
    for member in ["credentialArn", "upstreamRepositoryPrefix"] {
        if let Some(v) = input.get(member) {
            rule[member] = v.clone();
        }
    }
    let rule = ctx.app.registry.create_pull_through_rule(&scope(ctx), rule).await?;
    Ok(view(&rule, CREATED))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    check_registry(ctx, &input)?;
    let s = scope(ctx);
    let registry = &ctx.app.registry;
    let wanted = strings(&input, "ecrRepositoryPrefixes");
    let rules: Vec<Value> = if wanted.is_empty() {
        registry.pull_through_rules(&s)?
    } else {
        wanted.iter().map(|p| registry.pull_through_rule(&s, p)).collect::<Result<_, _>>()?
    };
    let limit = max_results(&input, 1000)?;
    let items = rules
        .iter()
        .map(|r| {
            let mut v = view(r, CREATED);
            v["updatedAt"] = r["updatedAt"].clone();
            (r["ecrRepositoryPrefix"].as_str().unwrap_or_default().to_string(), v)
        })
        .collect();
    let (rules, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("pullThroughCacheRules".into(), json!(rules));
    Ok(with_token(out, next))
}

pub async fn update(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let prefix = prefix_arg(ctx, &input, "ecrRepositoryPrefix")?;
    let Some(arn) = input.get("credentialArn").cloned() else {
        return Err(crate::error::ApiError::invalid("Missing required parameter 'credentialArn'.").into());
    };
    let now = ctx.timestamp();
    let rule = ctx
        .app
        .registry
        .update_pull_through_rule(&scope(ctx), &prefix, |rule| {
            rule["credentialArn"] = arn.clone();
            rule["updatedAt"] = json!(now);
        })
        .await?;
    Ok(view(&rule, &["ecrRepositoryPrefix", "registryId", "updatedAt", "credentialArn", "upstreamRepositoryPrefix"]))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let prefix = prefix_arg(ctx, &input, "ecrRepositoryPrefix")?;
    let rule = ctx.app.registry.delete_pull_through_rule(&scope(ctx), &prefix).await?;
    let members = [
        "ecrRepositoryPrefix",
        "upstreamRegistryUrl",
        "createdAt",
        "registryId",
        "credentialArn",
        "upstreamRepositoryPrefix",
    ];
    Ok(view(&rule, &members))
}

pub async fn validate(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let prefix = prefix_arg(ctx, &input, "ecrRepositoryPrefix")?;
    let (rule, failure) = ctx.app.registry.validate_pull_through_rule(&scope(ctx), &prefix).await?;
    let members =
        ["ecrRepositoryPrefix", "registryId", "upstreamRegistryUrl", "credentialArn", "upstreamRepositoryPrefix"];
    let mut out = view(&rule, &members);
    out["isValid"] = json!(failure.is_none());
    if let Some(why) = failure {
        out["failure"] = json!(why);
    }
    Ok(out)
}
