//! Log streams: CreateLogStream, DeleteLogStream, DescribeLogStreams. A stream's event
//! times and stored bytes come from its group's event index, not from its record.

use berth_control::logs::{LogGroup, LogStream, valid_stream_name};
use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde_json::{Value, json};

use super::{Ctx, events_of, group_arn, group_named, group_of, int, invalid, now_ms, stream_not_found};
use crate::ecs::{Obj, decode, encode, text, with_token};
use crate::error::{ApiError, ApiResult};

fn check_name(name: &str) -> ApiResult<()> {
    if valid_stream_name(name) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid log stream name '{name}': 1-512 characters, without ':' or '*'.")))
    }
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let (_, group) = group_named(ctx, text(&input, "logGroupName").unwrap_or_default())?;
    let name = text(&input, "logStreamName").unwrap_or_default();
    check_name(name)?;
    create_in(ctx, &group, name).await?;
    Ok(json!({}))
}

/// Creates stream `name` in `group`; ResourceAlreadyExistsException when it exists.
pub async fn create_in(ctx: &Ctx<'_>, group: &LogGroup, name: &str) -> ApiResult<()> {
    let key = ctx.keys.log_stream(&group.id, name);
    let stream = LogStream { name: name.to_string(), creation_time: now_ms(ctx) };
    // The group must still be there (not deleted meanwhile).
    let group_key = ctx.keys.log_group(&group.name);
    let Some(current) = ctx.store().get(&group_key)? else { return Err(super::group_not_found()) };
    let txn = Txn::new()
        .when(vec![Compare::absent(&key), Compare::unchanged(&group_key, current.mod_revision)])
        .and_then(vec![Op::put(&key, encode(&stream))]);
    if ctx.store().txn(txn).await?.succeeded {
        return Ok(());
    }
    if ctx.store().get(&group_key)?.is_none() {
        return Err(super::group_not_found());
    }
    Err(ApiError::new(400, "ResourceAlreadyExistsException", "The specified log stream already exists"))
}

/// The stream `name` of `group`, or ResourceNotFoundException.
pub fn stream_named(ctx: &Ctx<'_>, group: &LogGroup, name: &str) -> ApiResult<(KeyValue, LogStream)> {
    let kv = ctx.store().get(&ctx.keys.log_stream(&group.id, name))?.ok_or_else(stream_not_found)?;
    let stream = decode(&kv)?;
    Ok((kv, stream))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let (_, group) = group_named(ctx, text(&input, "logGroupName").unwrap_or_default())?;
    let name = text(&input, "logStreamName").unwrap_or_default();
    let (kv, _) = stream_named(ctx, &group, name)?;
    // Events first: a crash between leaves an empty stream, never old events under a new one.
    events_of(ctx.app, &group)?.delete_stream(name)?;
    ctx.store().txn(Txn::new().and_then(vec![Op::delete(&kv.key)])).await?;
    Ok(json!({}))
}

fn describe_one(
    ctx: &Ctx<'_>,
    group: &LogGroup,
    stream: &LogStream,
    summary: Option<&berth_logs::segments::StreamSummary>,
) -> Value {
    let mut out = json!({
        "logStreamName": stream.name,
        "creationTime": stream.creation_time,
        "arn": format!("{}:log-stream:{}", group_arn(ctx, &group.name), stream.name),
        "storedBytes": 0,
    });
    if let Some(s) = summary {
        for (member, value) in [
            ("firstEventTimestamp", s.first_timestamp),
            ("lastEventTimestamp", s.last_timestamp),
            ("lastIngestionTime", s.last_ingestion_time),
        ] {
            if let Some(v) = value {
                out[member] = json!(v);
            }
        }
    }
    out
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let (_, group) = group_of(ctx, &input)?;
    let prefix = text(&input, "logStreamNamePrefix").unwrap_or_default();
    // The model's enum admits only LogStreamName and LastEventTime.
    let by_time = text(&input, "orderBy") == Some("LastEventTime");
    if by_time && !prefix.is_empty() {
        return Err(invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
    }
    let descending = input.get("descending").and_then(Value::as_bool).unwrap_or(false);
    let limit = int(&input, "limit").unwrap_or(50) as usize;
    let log = events_of(ctx.app, &group)?;
    let mut items: Vec<(String, Value)> = Vec::new();
    for kv in ctx.store().list(&format!("{}{prefix}", ctx.keys.log_streams(&group.id)))? {
        let stream: LogStream = decode(&kv)?;
        let summary = log.summary(&stream.name);
        // Streams without events sort by their creation, as the last event time they lack.
        let time = summary.as_ref().and_then(|s| s.last_timestamp).unwrap_or(stream.creation_time);
        let key = if by_time { format!("{time:020}/{}", stream.name) } else { stream.name.clone() };
        items.push((key, describe_one(ctx, &group, &stream, summary.as_ref())));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        items.reverse();
    }
    let (streams, next) = crate::ecs::page_in_order(&input, items, limit, descending)?;
    let mut out = Obj::new();
    out.insert("logStreams".into(), Value::Array(streams));
    Ok(with_token(out, next))
}
