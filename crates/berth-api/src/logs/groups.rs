//! Log groups: CreateLogGroup, DeleteLogGroup, DescribeLogGroups, PutRetentionPolicy,
//! DeleteRetentionPolicy.

use berth_control::logs::{LogGroup, RETENTION_DAYS, valid_group_name};
use berth_store::{Compare, KeyRange, Op, Txn};
use serde_json::{Value, json};

use super::tags::check_tags;
use super::{Ctx, events_of, group_arn, group_named, int, invalid, name_of_identifier, now_ms};
use crate::ecs::{Obj, decode, encode, text, with_token};
use crate::error::{ApiError, ApiResult};

fn check_name(name: &str) -> ApiResult<()> {
    if name.starts_with("aws/") {
        return Err(invalid("Log group names can't start with the string aws/ (reserved for AWS)."));
    }
    if !valid_group_name(name) {
        return Err(invalid(format!(
            "Invalid log group name '{name}': 1-512 characters of a-z, A-Z, 0-9, '_', '-', '/', '.' and '#'."
        )));
    }
    Ok(())
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = text(&input, "logGroupName").unwrap_or_default();
    check_name(name)?;
    if input.contains_key("kmsKeyId") {
        return Err(invalid(
            "Berth has no AWS KMS: kmsKeyId cannot be set; events are stored unencrypted on the server's disk.",
        ));
    }
    let tags = tags_member(&input, "tags")?;
    let group = LogGroup {
        name: name.to_string(),
        id: ctx.control.ids.uuid(),
        creation_time: now_ms(ctx),
        retention_in_days: None,
        log_group_class: text(&input, "logGroupClass").unwrap_or("STANDARD").to_string(),
        deletion_protection: input.get("deletionProtectionEnabled").and_then(Value::as_bool).unwrap_or(false),
        tags,
    };
    let key = ctx.keys.log_group(name);
    let txn = Txn::new().when(vec![Compare::absent(&key)]).and_then(vec![Op::put(&key, encode(&group))]);
    if !ctx.store().txn(txn).await?.succeeded {
        return Err(ApiError::new(400, "ResourceAlreadyExistsException", "The specified log group already exists"));
    }
    Ok(json!({}))
}

/// A `tags` map member, checked as CloudWatch Logs does.
pub fn tags_member(input: &Obj, key: &str) -> ApiResult<std::collections::BTreeMap<String, String>> {
    let tags: std::collections::BTreeMap<String, String> = match input.get(key) {
        None => Default::default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| invalid("tags must map keys to strings."))?,
    };
    check_tags(&tags)?;
    Ok(tags)
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = text(&input, "logGroupName").unwrap_or_default();
    let (kv, group) = group_named(ctx, name)?;
    if group.deletion_protection {
        return Err(ApiError::new(
            400,
            "OperationAbortedException",
            "Log group deletion protection is enabled; disable it before deleting the log group.",
        ));
    }
    let txn = Txn::new()
        .when(vec![Compare::unchanged(&kv.key, kv.mod_revision)])
        .and_then(vec![Op::delete(&kv.key), Op::delete_prefix(&ctx.keys.log_streams(&group.id))]);
    if !ctx.store().txn(txn).await?.succeeded {
        return Err(ApiError::new(
            400,
            "OperationAbortedException",
            "The log group changed while it was being deleted; retry.",
        ));
    }
    // The records are gone first: a crash here leaves a directory no group names, which the
    // retention sweep removes.
    ctx.app.logs.remove_group(&group.id)?;
    Ok(json!({}))
}

fn describe_one(ctx: &Ctx<'_>, group: &LogGroup) -> ApiResult<Value> {
    let log = events_of(ctx.app, group)?;
    let arn = group_arn(ctx, &group.name);
    let mut out = json!({
        "logGroupName": group.name,
        "creationTime": group.creation_time,
        "metricFilterCount": 0,
        "arn": format!("{arn}:*"),
        "storedBytes": log.stored_bytes(),
        "logGroupClass": group.log_group_class,
        "logGroupArn": arn,
        "deletionProtectionEnabled": group.deletion_protection,
    });
    if let Some(days) = group.retention_in_days {
        out["retentionInDays"] = json!(days);
    }
    Ok(out)
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let prefix = text(&input, "logGroupNamePrefix");
    let pattern = text(&input, "logGroupNamePattern");
    if prefix.is_some() && pattern.is_some() {
        return Err(invalid("logGroupNamePrefix and logGroupNamePattern are mutually exclusive parameters."));
    }
    let identifiers = crate::ecs::strings(&input, "logGroupIdentifiers");
    if !identifiers.is_empty() && (prefix.is_some() || pattern.is_some()) {
        return Err(invalid("logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern."));
    }
    if input.get("includeLinkedAccounts").and_then(Value::as_bool) == Some(true) {
        return Err(invalid("Berth has no cross-account observability: includeLinkedAccounts must be false."));
    }
    let accounts = crate::ecs::strings(&input, "accountIdentifiers");
    if accounts.iter().any(|a| *a != ctx.config().account) {
        return Err(invalid(format!(
            "Berth serves one account ({}): accountIdentifiers names another.",
            ctx.config().account
        )));
    }
    let names: Vec<String> = identifiers.iter().map(|i| name_of_identifier(ctx, i)).collect::<ApiResult<_>>()?;
    let class = text(&input, "logGroupClass");
    let limit = int(&input, "limit").unwrap_or(50) as usize;
    let base = ctx.keys.log_groups();
    let start = format!("{base}{}", prefix.unwrap_or_default());
    let bad_token = || invalid("The specified nextToken is invalid.");
    let after = match text(&input, "nextToken") {
        Some(t) => Some(String::from_utf8(hex::decode(t).map_err(|_| bad_token())?).map_err(|_| bad_token())?),
        None => None,
    };
    // Groups list in name order; the token is the hex of the last name given.
    let range = match &after {
        Some(a) => KeyRange { start: format!("{base}{a}\0"), ..KeyRange::prefix(&start) },
        None => KeyRange::prefix(&start),
    };
    let mut groups = Vec::new();
    let mut more = false;
    for kv in ctx.store().range(&range)?.kvs {
        let group: LogGroup = decode(&kv)?;
        let wanted = pattern.is_none_or(|p| group.name.contains(p))
            && class.is_none_or(|c| group.log_group_class == c)
            && (names.is_empty() || names.contains(&group.name));
        if wanted && groups.len() == limit {
            more = true;
            break;
        }
        if wanted {
            groups.push(group);
        }
    }
    let next = if more { groups.last().map(|g| hex::encode(&g.name)) } else { None };
    let described = groups.iter().map(|g| describe_one(ctx, g)).collect::<ApiResult<Vec<_>>>()?;
    let mut response = Obj::new();
    response.insert("logGroups".into(), Value::Array(described));
    Ok(with_token(response, next))
}

pub async fn put_retention(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let days = int(&input, "retentionInDays").unwrap_or_default();
    if !RETENTION_DAYS.iter().any(|&d| i64::from(d) == days) {
        return Err(invalid(format!(
            "Invalid retentionInDays {days}: possible values are {}.",
            RETENTION_DAYS.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        )));
    }
    set_retention(ctx, &input, Some(days as u32)).await
}

pub async fn delete_retention(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    set_retention(ctx, &input, None).await
}

async fn set_retention(ctx: &Ctx<'_>, input: &Obj, days: Option<u32>) -> ApiResult<Value> {
    let name = text(input, "logGroupName").unwrap_or_default();
    update(ctx, name, |g| g.retention_in_days = days).await?;
    Ok(json!({}))
}

/// Changes a group's record (compare-and-swap, retried when another change won).
pub async fn update(ctx: &Ctx<'_>, name: &str, change: impl Fn(&mut LogGroup)) -> ApiResult<LogGroup> {
    let change = &change;
    berth_control::store::retry(move || async move {
        let (kv, mut group) = group_named(ctx, name)?;
        change(&mut group);
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&kv.key, kv.mod_revision)])
            .and_then(vec![Op::put(&kv.key, encode(&group))]);
        Ok::<_, ApiError>(ctx.store().txn(txn).await?.succeeded.then_some(group))
    })
    .await
}
