//! CloudWatch Logs (`Logs_20140328.*`, AWS JSON 1.1): the dispatch table, the service's
//! errors, and what the handlers share — finding a log group by name or ARN, and the
//! group's event log. Log groups and streams are records of the store
//! (`berth_control::logs`); their events live in `berth-logs`' segments ([`App::logs`]).

mod events;
mod groups;
pub mod queries;
pub mod retention;
mod streams;
mod tags;

use std::sync::Arc;

use berth_control::logs::LogGroup;
use berth_logs::segments::{GroupLog, LogError};
use berth_store::KeyValue;
use serde_json::Value;

use crate::App;
use crate::ecs::{Ctx, Obj, decode, text};
use crate::error::{ApiError, ApiResult};
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Operations of the model not in the table answer `InvalidOperationException`.
pub static SERVICE: Service = Service {
    name: "CloudWatch Logs",
    model: &shapes::LOGS,
    operations: operations! {
        "CreateLogGroup" => |ctx, input| groups::create(ctx, input).await,
        "DeleteLogGroup" => |ctx, input| groups::delete(ctx, input).await,
        "DescribeLogGroups" => |ctx, input| groups::describe(ctx, input),
        "PutRetentionPolicy" => |ctx, input| groups::put_retention(ctx, input).await,
        "DeleteRetentionPolicy" => |ctx, input| groups::delete_retention(ctx, input).await,
        "CreateLogStream" => |ctx, input| streams::create(ctx, input).await,
        "DeleteLogStream" => |ctx, input| streams::delete(ctx, input).await,
        "DescribeLogStreams" => |ctx, input| streams::describe(ctx, input),
        "PutLogEvents" => |ctx, input| events::put_checked(ctx, input),
        "GetLogEvents" => |ctx, input| events::get(ctx, input),
        "FilterLogEvents" => |ctx, input| events::filter(ctx, input),
        "TagResource" => |ctx, input| tags::tag_resource(ctx, input).await,
        "UntagResource" => |ctx, input| tags::untag_resource(ctx, input).await,
        "ListTagsForResource" => |ctx, input| tags::list_for_resource(ctx, input),
        "TagLogGroup" => |ctx, input| tags::tag_group(ctx, input).await,
        "UntagLogGroup" => |ctx, input| tags::untag_group(ctx, input).await,
        "ListTagsLogGroup" => |ctx, input| tags::list_group(ctx, input),
        "StartQuery" => |ctx, input| queries::start(ctx, input),
        "GetQueryResults" => |ctx, input| queries::results(ctx, input),
        "StopQuery" => |ctx, input| queries::stop(ctx, input),
        "DescribeQueries" => |ctx, input| queries::describe(ctx, input),
    },
    // PutLogEvents carries up to 1 MiB of messages, JSON-escaped.
    body_limit: 8 * 1024 * 1024,
    invalid_input: "InvalidParameterException",
    unimplemented: "InvalidOperationException",
    json_bodies: &[("PutLogEvents", |ctx, body| Box::pin(async move { events::put_body(ctx, &body) }))],
};

pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameterException", message)
}

pub fn group_not_found() -> ApiError {
    ApiError::new(400, "ResourceNotFoundException", "The specified log group does not exist.")
}

pub fn stream_not_found() -> ApiError {
    ApiError::new(400, "ResourceNotFoundException", "The specified log stream does not exist.")
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        tracing::error!(error = %e, "log storage failure");
        ApiError::new(500, "ServiceUnavailableException", format!("log storage: {e}"))
    }
}

/// A log group's ARN as DescribeLogGroups' `logGroupArn` and the tagging operations write it.
pub fn group_arn(ctx: &Ctx<'_>, name: &str) -> String {
    format!("arn:aws:logs:{}:{}:log-group:{name}", ctx.name, ctx.config().account)
}

/// The group a `logGroupName` / `logGroupIdentifier` (name or ARN) pair names: exactly one
/// of them must be given (the operations that take both).
pub fn group_of(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<(KeyValue, LogGroup)> {
    let name = match (text(input, "logGroupName"), text(input, "logGroupIdentifier")) {
        (Some(n), None) => n.to_string(),
        (None, Some(id)) => name_of_identifier(ctx, id)?,
        (Some(_), Some(_)) => return Err(invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")),
        (None, None) => return Err(invalid("Either logGroupName or logGroupIdentifier must be given.")),
    };
    group_named(ctx, &name)
}

/// A log group's name from its name or ARN (with or without the trailing `:*`).
pub fn name_of_identifier(ctx: &Ctx<'_>, id: &str) -> ApiResult<String> {
    if !id.starts_with("arn:") {
        return Ok(id.to_string());
    }
    let prefix = format!("arn:aws:logs:{}:{}:log-group:", ctx.name, ctx.config().account);
    let rest = id
        .strip_prefix(&prefix)
        .ok_or_else(|| invalid(format!("{id} is not a log group ARN of this account and region.")))?;
    Ok(rest.strip_suffix(":*").unwrap_or(rest).to_string())
}

/// The group named `name`, or ResourceNotFoundException.
pub fn group_named(ctx: &Ctx<'_>, name: &str) -> ApiResult<(KeyValue, LogGroup)> {
    let kv = ctx.store().get(&ctx.keys.log_group(name))?.ok_or_else(group_not_found)?;
    let group = decode(&kv)?;
    Ok((kv, group))
}

/// The event log of a group.
pub fn events_of(app: &App, group: &LogGroup) -> ApiResult<Arc<GroupLog>> {
    Ok(app.logs.group(&group.id)?)
}

/// Milliseconds since the epoch, now.
pub fn now_ms(ctx: &Ctx<'_>) -> i64 {
    (ctx.timestamp() * 1000.0).round() as i64
}

/// The optional integer member `key`.
pub fn int(input: &Obj, key: &str) -> Option<i64> {
    input.get(key).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests;
