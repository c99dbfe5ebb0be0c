//! Account settings: ListAccountSettings, PutAccountSetting, PutAccountSettingDefault,
//! DeleteAccountSetting. A setting is set for one principal or as the account default; the
//! effective value is the principal's, else the account default, else AWS's default.

use berth_store::{Op, Txn};
use serde_json::{Value, json};

use super::{Ctx, Obj, decode, encode, max_results, page, text, with_token};
use crate::error::{ApiError, ApiResult};

/// Every setting name with AWS's default value and the values it accepts.
const SETTINGS: &[(&str, &str, &[&str])] = &[
    ("serviceLongArnFormat", "enabled", &["enabled", "disabled"]),
    ("taskLongArnFormat", "enabled", &["enabled", "disabled"]),
    ("containerInstanceLongArnFormat", "enabled", &["enabled", "disabled"]),
    ("awsvpcTrunking", "disabled", &["enabled", "disabled"]),
    ("containerInsights", "disabled", &["enabled", "disabled", "enhanced"]),
    ("dualStackIPv6", "disabled", &["enabled", "disabled"]),
    ("fargateFIPSMode", "disabled", &["enabled", "disabled"]),
    ("tagResourceAuthorization", "on", &["on", "off"]),
    ("fargateTaskRetirementWaitPeriod", "7", &["0", "7", "14"]),
    ("guardDutyActivate", "off", &["on", "off"]),
    ("defaultLogDriverMode", "blocking", &["blocking", "non-blocking"]),
    ("fargateEventWindows", "disabled", &["enabled", "disabled"]),
];

const DEFAULT_PRINCIPAL: &str = "default";

fn spec(name: &str) -> ApiResult<&'static (&'static str, &'static str, &'static [&'static str])> {
    SETTINGS
        .iter()
        .find(|(n, ..)| *n == name)
        .ok_or_else(|| ApiError::invalid(format!("Unknown account setting '{name}'.")))
}

fn check_principal(ctx: &Ctx<'_>, principal: &str) -> ApiResult<()> {
    let prefix = format!("arn:aws:iam::{}:", ctx.app.config.account);
    if principal.starts_with(&prefix) && principal.len() > prefix.len() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "principalArn must be an IAM user, role or root ARN of account {}.",
            ctx.app.config.account
        )))
    }
}

fn setting(name: &str, value: &str, principal: &str, kind: &str) -> Value {
    json!({"name": name, "value": value, "principalArn": principal, "type": kind})
}

pub async fn put(ctx: &Ctx<'_>, input: Obj, account_default: bool) -> ApiResult<Value> {
    let name = text(&input, "name").unwrap_or_default();
    let value = text(&input, "value").unwrap_or_default();
    let (_, _, allowed) = spec(name)?;
    if !allowed.contains(&value) {
        return Err(ApiError::invalid(format!(
            "Invalid value '{value}' for {name}. Valid values: {}.",
            allowed.join(", ")
        )));
    }
    let principal = match (account_default, text(&input, "principalArn")) {
        (true, _) => ctx.principal(),
        (false, Some(p)) => {
            check_principal(ctx, p)?;
            p.to_string()
        }
        (false, None) => ctx.principal(),
    };
    if name == "guardDutyActivate" && !account_default {
        return Err(ApiError::invalid("guardDutyActivate can only be set as an account default."));
    }
    let scope = if account_default { DEFAULT_PRINCIPAL.to_string() } else { principal.clone() };
    let out = setting(name, value, &principal, "user");
    ctx.store().txn(Txn::new().and_then(vec![Op::put(&ctx.keys.setting(&scope, name), encode(&out))])).await?;
    Ok(json!({"setting": out}))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = text(&input, "name").unwrap_or_default();
    spec(name)?;
    let principal = match text(&input, "principalArn") {
        Some(p) => {
            check_principal(ctx, p)?;
            p.to_string()
        }
        None => ctx.principal(),
    };
    let key = ctx.keys.setting(&principal, name);
    let existing = ctx
        .store()
        .get(&key)?
        .ok_or_else(|| ApiError::invalid(format!("No setting {name} is set for {principal}.")))?;
    let out: Value = decode(&existing)?;
    ctx.store().txn(Txn::new().and_then(vec![Op::delete(&key)])).await?;
    Ok(json!({"setting": out}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let limit = max_results(&input, 10)?;
    let name = text(&input, "name");
    if let Some(n) = name {
        spec(n)?;
    }
    let value = text(&input, "value");
    if value.is_some() && name.is_none() {
        return Err(ApiError::invalid("value can only be given together with name."));
    }
    let principal = match text(&input, "principalArn") {
        Some(p) => {
            check_principal(ctx, p)?;
            p.to_string()
        }
        None => ctx.principal(),
    };
    let effective = input.get("effectiveSettings").and_then(Value::as_bool).unwrap_or(false);
    let stored = |scope: &str, n: &str| -> ApiResult<Option<Value>> {
        ctx.store().get(&ctx.keys.setting(scope, n))?.map(|kv| decode(&kv)).transpose()
    };
    let mut items = Vec::new();
    for (n, default, _) in SETTINGS {
        if name.is_some_and(|w| w != *n) {
            continue;
        }
        let found = match stored(&principal, n)? {
            Some(v) => Some(v),
            None if effective => {
                Some(stored(DEFAULT_PRINCIPAL, n)?.unwrap_or_else(|| setting(n, default, &principal, "aws_managed")))
            }
            None => None,
        };
        if let Some(s) = found
            && value.is_none_or(|v| s["value"] == v)
        {
            items.push((n.to_string(), s));
        }
    }
    let (settings, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("settings".into(), Value::Array(settings));
    Ok(with_token(out, next))
}
