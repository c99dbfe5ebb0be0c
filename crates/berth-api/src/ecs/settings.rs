//! Account settings: ListAccountSettings, PutAccountSetting, PutAccountSettingDefault,
//! DeleteAccountSetting. A setting is set for one principal or as the account default; the
//! effective value is the principal's, else the account default, else AWS's default.

use berth_store::{Op, Txn};
use serde_json::{Value, json};

use super::{Ctx, Obj, decode, encode, max_results, page, text, with_token};
use crate::error::{ApiError, ApiResult};

/// One account setting: AWS's default, the values the model allows, and which of them
/// Berth takes. A value Berth does not take is refused with `refusal`, never stored to no
/// effect (docs/differences.md says what each setting does here).
struct Spec {
    name: &'static str,
    default: &'static str,
    values: &'static [&'static str],
    accepts: &'static [&'static str],
    refusal: &'static str,
}

const ONLY_LONG_ARNS: &str = "You can no longer disable Long Arn settings.";

/// Every setting of the model's `SettingName`, in its order.
const SETTINGS: &[Spec] = &[
    Spec {
        name: "serviceLongArnFormat",
        default: "enabled",
        values: &["enabled", "disabled"],
        accepts: &["enabled"],
        refusal: ONLY_LONG_ARNS,
    },
    Spec {
        name: "taskLongArnFormat",
        default: "enabled",
        values: &["enabled", "disabled"],
        accepts: &["enabled"],
        refusal: ONLY_LONG_ARNS,
    },
    Spec {
        name: "containerInstanceLongArnFormat",
        default: "enabled",
        values: &["enabled", "disabled"],
        accepts: &["enabled"],
        refusal: ONLY_LONG_ARNS,
    },
    Spec {
        name: "awsvpcTrunking",
        default: "disabled",
        values: &["enabled", "disabled"],
        accepts: &["disabled"],
        refusal: "Berth does not support awsvpcTrunking yet: container instances have no network interfaces to trunk.",
    },
    // Acts: the containerInsights setting of clusters created without one.
    Spec {
        name: "containerInsights",
        default: "disabled",
        values: &["enabled", "disabled", "enhanced"],
        accepts: &["enabled", "disabled", "enhanced"],
        refusal: "",
    },
    Spec {
        name: "fargateFIPSMode",
        default: "disabled",
        values: &["enabled", "disabled"],
        accepts: &["disabled"],
        refusal: "Berth does not support fargateFIPSMode yet: it has no Fargate tasks to run in FIPS mode.",
    },
    // Without IAM every caller may tag what it creates: on and off act alike.
    Spec {
        name: "tagResourceAuthorization",
        default: "on",
        values: &["on", "off"],
        accepts: &["on", "off"],
        refusal: "",
    },
    // Stored and reported: Berth has no Fargate tasks to retire.
    Spec {
        name: "fargateTaskRetirementWaitPeriod",
        default: "7",
        values: &["0", "7", "14"],
        accepts: &["0", "7", "14"],
        refusal: "",
    },
    Spec {
        name: "guardDutyActivate",
        default: "off",
        values: &["on", "off"],
        accepts: &[],
        refusal: "guardDutyActivate is read only: Amazon GuardDuty sets it, and Berth has no GuardDuty.",
    },
    // Stored and reported: the agent does not apply log configurations yet.
    Spec {
        name: "defaultLogDriverMode",
        default: "non-blocking",
        values: &["blocking", "non-blocking"],
        accepts: &["blocking", "non-blocking"],
        refusal: "",
    },
    // Stored and reported: Berth has no Fargate tasks to retire.
    Spec {
        name: "fargateEventWindows",
        default: "disabled",
        values: &["enabled", "disabled"],
        accepts: &["enabled", "disabled"],
        refusal: "",
    },
];

const DEFAULT_PRINCIPAL: &str = "default";

fn spec(name: &str) -> ApiResult<&'static Spec> {
    SETTINGS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::invalid(format!("Unknown account setting '{name}'.")))
}

fn check_principal(ctx: &Ctx<'_>, principal: &str) -> ApiResult<()> {
    let prefix = format!("arn:aws:iam::{}:", ctx.config().account);
    if principal.starts_with(&prefix) && principal.len() > prefix.len() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "principalArn must be an IAM user, role or root ARN of account {}.",
            ctx.config().account
        )))
    }
}

fn setting(name: &str, value: &str, principal: &str, kind: &str) -> Value {
    json!({"name": name, "value": value, "principalArn": principal, "type": kind})
}

pub async fn put(ctx: &Ctx<'_>, input: Obj, account_default: bool) -> ApiResult<Value> {
    let name = text(&input, "name").unwrap_or_default();
    let value = text(&input, "value").unwrap_or_default();
    let spec = spec(name)?;
    if !spec.values.contains(&value) {
        return Err(ApiError::invalid(format!(
            "Invalid value '{value}' for {name}. Valid values: {}.",
            spec.values.join(", ")
        )));
    }
    if !spec.accepts.contains(&value) {
        return Err(ApiError::invalid(spec.refusal));
    }
    let principal = match (account_default, text(&input, "principalArn")) {
        (true, _) => ctx.principal(),
        (false, Some(p)) => {
            check_principal(ctx, p)?;
            p.to_string()
        }
        (false, None) => ctx.principal(),
    };
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
    let mut items = Vec::new();
    for spec in SETTINGS {
        if name.is_some_and(|w| w != spec.name) {
            continue;
        }
        let found = match stored(ctx, &principal, spec.name)? {
            Some(v) => Some(v),
            None if effective => Some(fallback(ctx, spec, &principal)?),
            None => None,
        };
        if let Some(s) = found
            && value.is_none_or(|v| s["value"] == v)
        {
            items.push((spec.name.to_string(), s));
        }
    }
    let (settings, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("settings".into(), Value::Array(settings));
    Ok(with_token(out, next))
}

fn stored(ctx: &Ctx<'_>, scope: &str, name: &str) -> ApiResult<Option<Value>> {
    ctx.store().get(&ctx.keys.setting(scope, name))?.map(|kv| decode(&kv)).transpose()
}

/// The account default of a setting, else AWS's.
fn fallback(ctx: &Ctx<'_>, spec: &Spec, principal: &str) -> ApiResult<Value> {
    Ok(stored(ctx, DEFAULT_PRINCIPAL, spec.name)?
        .unwrap_or_else(|| setting(spec.name, spec.default, principal, "aws_managed")))
}

/// The value of setting `name` in effect for the caller: theirs, else the account default,
/// else AWS's default.
pub(crate) fn effective(ctx: &Ctx<'_>, name: &str) -> ApiResult<String> {
    let spec = spec(name)?;
    let principal = ctx.principal();
    let found = match stored(ctx, &principal, name)? {
        Some(v) => v,
        None => fallback(ctx, spec, &principal)?,
    };
    Ok(found["value"].as_str().unwrap_or(spec.default).to_string())
}

#[cfg(test)]
mod tests {
    use super::SETTINGS;
    use crate::shapes::{ECS, Shape};

    /// The settings Berth knows are exactly the model's `SettingName` values, in its order,
    /// and every value Berth refuses has a message.
    #[test]
    fn settings_follow_the_model() {
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        let Some(Shape::String { values: Some(model), .. }) = ECS.shapes.get("SettingName") else {
            panic!("the model has no SettingName enum");
        };
        assert_eq!(names, model.iter().map(String::as_str).collect::<Vec<_>>());
        for s in SETTINGS {
            assert!(s.values.contains(&s.default), "{}", s.name);
            assert!(s.accepts.iter().all(|a| s.values.contains(a)), "{}", s.name);
            assert!(s.accepts.len() == s.values.len() || !s.refusal.is_empty(), "{}", s.name);
        }
    }
}
