//! Listener rules: CreateRule, DescribeRules (by listener, or by rule ARNs alone, default
//! rules included), ModifyRule, DeleteRule and SetRulePriorities. Transforms (host and URL
//! rewrites) are refused by name.

use berth_control::elb::rules::{self, NewRule, RuleView};
use serde_json::{Value, json};

use super::actions::{actions_in, actions_out, conditions_in, conditions_out};
use super::{page, refuse, required, tags_in, u32_of, validation};
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::ApiResult;

fn output(rule: &RuleView) -> Value {
    json!({
        "RuleArn": rule.arn,
        "Priority": rule.priority.map_or_else(|| "default".to_string(), |p| p.to_string()),
        "Conditions": conditions_out(&rule.conditions),
        "Actions": actions_out(&rule.actions),
        "IsDefault": rule.is_default(),
    })
}

/// Rules sort by priority, the default rule last (its key sorts after every number).
fn items(views: &[RuleView]) -> Vec<(String, Value)> {
    views.iter().map(|v| (v.priority.map_or_else(|| format!("x{}", v.arn), |p| format!("{p:05}")), output(v))).collect()
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "CreateRule", &["Transforms"])?;
    let new = NewRule {
        priority: u32_of(input.get("Priority")).ok_or_else(|| validation("A priority must be specified"))?,
        conditions: conditions_in(&input),
        actions: actions_in(&input, "Actions"),
        tags: tags_in(input.get("Tags")),
    };
    let rule = rules::create(&ctx.region, required(&input, "ListenerArn")?, new).await?;
    let view =
        RuleView { arn: rule.arn, priority: Some(rule.priority), conditions: rule.conditions, actions: rule.actions };
    Ok(json!({ "Rules": [output(&view)] }))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arns = strings(&input, "RuleArns");
    let views = match (text(&input, "ListenerArn"), arns.is_empty()) {
        (Some(_), false) => {
            return Err(validation("A listener ARN and rule ARNs cannot be specified at the same time"));
        }
        (None, true) => return Err(validation("You must specify either a listener ARN or rule ARNs")),
        (Some(listener), true) => rules::of_listener(&ctx.region, listener)?,
        (None, false) => rules::by_arns(&ctx.region, &arns)?,
    };
    page(&input, items(&views), "Rules")
}

pub async fn modify(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "ModifyRule", &["Transforms"])?;
    // There are never transforms to reset, so either value of ResetTransforms holds.
    let conditions = input.contains_key("Conditions").then(|| conditions_in(&input));
    let actions = input.contains_key("Actions").then(|| actions_in(&input, "Actions"));
    let arn = required(&input, "RuleArn")?;
    let view = rules::modify(&ctx.region, arn, conditions.as_deref(), actions.as_deref()).await?;
    Ok(json!({ "Rules": [output(&view)] }))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    rules::delete(&ctx.region, required(&input, "RuleArn")?).await?;
    Ok(json!({}))
}

pub async fn set_priorities(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let mut pairs = Vec::new();
    for p in input.get("RulePriorities").and_then(Value::as_array).into_iter().flatten() {
        let arn = p["RuleArn"].as_str().ok_or_else(|| validation("Each rule priority must specify a RuleArn"))?;
        let priority =
            u32_of(p.get("Priority")).ok_or_else(|| validation("Each rule priority must specify a Priority"))?;
        pairs.push((arn.to_string(), priority));
    }
    if pairs.is_empty() {
        return Err(validation("At least one rule priority must be specified"));
    }
    let views = rules::set_priorities(&ctx.region, &pairs).await?;
    Ok(json!({ "Rules": views.iter().map(output).collect::<Vec<_>>() }))
}
