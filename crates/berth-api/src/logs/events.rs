//! Log events: PutLogEvents (CloudWatch's batch rules), GetLogEvents (one stream, paged both
//! ways with `f/` and `b/` tokens) and FilterLogEvents (the group's streams, filtered by a
//! pattern).

use berth_control::logs::LogGroup;
use berth_logs::pattern::Pattern;
use berth_logs::segments::{Direction, Event, Key, Limits, ScanPosition, Window};
use serde::Deserialize;
use serde_json::{Value, json};

use super::streams::stream_named;
use super::{Ctx, events_of, group_named, group_of, int, invalid, now_ms};
use crate::ecs::{Obj, strings, text};
use crate::error::ApiResult;
use crate::protocol::json::{self, Bulk};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// CloudWatch's cap on a batch and on a page: messages in UTF-8 plus 26 bytes per event.
const MAX_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
/// How much of the stored events one FilterLogEvents call reads before it answers with a
/// token to go on from.
const SCAN_BUDGET: u64 = 256 << 20;

/// Where the events of a batch fall: `[..too_old)` older than 14 days, `[..expired)` older
/// than the group's retention, `[too_new..]` more than 2 hours ahead; the rest is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split {
    too_old: usize,
    expired: usize,
    too_new: usize,
}

fn split(stamps: &[i64], now: i64, retention_days: Option<u32>) -> Split {
    let old = now - 14 * DAY_MS;
    let retained = retention_days.map_or(i64::MIN, |d| now - i64::from(d) * DAY_MS);
    Split {
        too_old: stamps.partition_point(|&t| t < old),
        expired: stamps.partition_point(|&t| t < retained.max(old)),
        too_new: stamps.partition_point(|&t| t <= now + 2 * HOUR_MS),
    }
}

/// PutLogEvents' input, typed: a batch is decoded straight from its body, with no value tree
/// of its up to 10,000 events ([`crate::protocol::json::bulk`]).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(rename_all = "camelCase")]
struct PutInput {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputEvent>,
    #[serde(default)]
    sequence_token: Option<String>,
    #[serde(default)]
    entity: Option<Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct InputEvent {
    timestamp: i64,
    message: String,
}

impl Bulk for PutInput {
    /// The model's bounds: names of 1 to 512 characters, 1 to 10,000 events, timestamps not
    /// negative, messages and a sequence token not empty. An entity is left to the model's
    /// checks (and then refused here).
    fn plainly_valid(&self) -> bool {
        let name = |n: &str| (1..=512).contains(&n.chars().count());
        name(&self.log_group_name)
            && name(&self.log_stream_name)
            && (1..=10_000).contains(&self.log_events.len())
            && self.log_events.iter().all(|e| e.timestamp >= 0 && !e.message.is_empty())
            && self.sequence_token.as_ref().is_none_or(|t| !t.is_empty())
            && self.entity.is_none()
    }
}

/// PutLogEvents from a JSON body.
pub fn put_body(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Value> {
    put(ctx, json::bulk(&super::SERVICE, "PutLogEvents", body)?)
}

/// PutLogEvents from an input the model's checks took.
pub fn put_checked(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let input = serde_json::from_value(Value::Object(input))
        .map_err(|e| invalid(format!("The request does not fit PutLogEvents' input: {e}.")))?;
    put(ctx, input)
}

fn put(ctx: &Ctx<'_>, input: PutInput) -> ApiResult<Value> {
    if input.entity.is_some() {
        return Err(invalid("Berth does not associate log events with entities: entity cannot be given."));
    }
    let (_, group) = group_named(ctx, &input.log_group_name)?;
    let stream = &input.log_stream_name;
    stream_named(ctx, &group, stream)?;
    let given = input.log_events;
    let stamps: Vec<i64> = given.iter().map(|e| e.timestamp).collect();
    let size: usize = given.iter().map(|e| e.message.len() + EVENT_OVERHEAD).sum();
    if size > MAX_BYTES {
        return Err(invalid(format!(
            "The batch of log events is {size} bytes (messages in UTF-8 plus 26 bytes each); at most {MAX_BYTES} fit a PutLogEvents request."
        )));
    }
    if stamps.windows(2).any(|w| w[1] < w[0]) {
        return Err(invalid("Log events in a single PutLogEvents request must be in chronological order."));
    }
    let now = now_ms(ctx);
    let s = split(&stamps, now, group.retention_in_days);
    let kept = s.expired..s.too_new.max(s.expired);
    if let (Some(first), Some(last)) = (stamps.get(kept.start), kept.end.checked_sub(1).and_then(|i| stamps.get(i)))
        && kept.start < kept.end
        && last - first > DAY_MS
    {
        return Err(invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    let events: Vec<Event> = given
        .into_iter()
        .skip(kept.start)
        .take(kept.len())
        .map(|e| Event { timestamp: e.timestamp, ingestion_time: now, message: e.message })
        .collect();
    events_of(ctx.app, &group)?.append(stream, events)?;
    let mut rejected = serde_json::Map::new();
    if s.too_old > 0 {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(s.too_old));
    }
    if s.expired > s.too_old {
        rejected.insert("expiredLogEventEndIndex".into(), json!(s.expired));
    }
    if s.too_new < stamps.len() {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(s.too_new));
    }
    Ok(if rejected.is_empty() { json!({}) } else { json!({"rejectedLogEventsInfo": rejected}) })
}

/// The earliest timestamp a read may still show: events past the group's retention are
/// gone even before the sweep removes their segment.
fn retained_since(ctx: &Ctx<'_>, group: &LogGroup) -> Option<i64> {
    group.retention_in_days.map(|d| now_ms(ctx) - i64::from(d) * DAY_MS)
}

fn window(start: Option<i64>, end: Option<i64>, retained: Option<i64>) -> Window {
    Window { start: start.max(retained), end }
}

fn token(direction: Direction, k: Key) -> String {
    let d = if direction == Direction::Forward { 'f' } else { 'b' };
    format!("{d}/{:019}{:020}{:010}", k.timestamp, k.seq, k.index)
}

fn parse_token(t: &str) -> Option<(Direction, Key)> {
    let (d, digits) = t.split_once('/')?;
    let direction = match d {
        "f" => Direction::Forward,
        "b" => Direction::Backward,
        _ => return None,
    };
    if digits.len() != 49 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        direction,
        Key {
            timestamp: digits[..19].parse().ok()?,
            seq: digits[19..39].parse().ok()?,
            index: digits[39..].parse().ok()?,
        },
    ))
}

pub fn get(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let (_, group) = group_of(ctx, &input)?;
    let stream = text(&input, "logStreamName").unwrap_or_default();
    stream_named(ctx, &group, stream)?;
    // `unmask` changes nothing: without data protection policies nothing is masked.
    let limit = int(&input, "limit").unwrap_or(10_000) as usize;
    let head = input.get("startFromHead").and_then(Value::as_bool).unwrap_or(false);
    let (direction, cursor) = match text(&input, "nextToken") {
        Some(t) => {
            let (d, k) = parse_token(t).ok_or_else(|| invalid("The specified nextToken is invalid."))?;
            (d, Some(k))
        }
        None if head => (Direction::Forward, None),
        None => (Direction::Backward, None),
    };
    let w = window(int(&input, "startTime"), int(&input, "endTime"), retained_since(ctx, &group));
    let mut page = events_of(ctx.app, &group)?.page(stream, direction, cursor, w, limit)?;
    // At most 1 MiB a page: the events nearest the cursor stay.
    let mut size = 0;
    let fits = page.iter().take_while(|(_, e)| {
        size += e.message.len() + EVENT_OVERHEAD;
        size <= MAX_BYTES
    });
    let fit = fits.count();
    if fit < page.len() {
        match direction {
            Direction::Forward => page.truncate(fit.max(1)),
            Direction::Backward => {
                page.drain(..page.len() - fit.max(1));
            }
        }
    }
    let zero = Key { timestamp: 0, seq: 0, index: 0 };
    let (forward, backward) = match (page.first(), page.last()) {
        (Some((first, _)), Some((last, _))) => (last.next(), *first),
        // Nothing here: both tokens stay where the request was, so paging ends.
        _ => (cursor.unwrap_or(zero), cursor.unwrap_or(zero)),
    };
    let events: Vec<Value> = page
        .into_iter()
        .map(|(_, e)| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}))
        .collect();
    Ok(json!({
        "events": events,
        "nextForwardToken": token(Direction::Forward, forward),
        "nextBackwardToken": token(Direction::Backward, backward),
    }))
}

fn scan_token(p: ScanPosition) -> String {
    format!("{:x}-{:x}-{:x}", p.segment, p.offset, p.index)
}

fn parse_scan_token(t: &str) -> Option<ScanPosition> {
    let mut parts = t.split('-').map(|p| u64::from_str_radix(p, 16));
    let (Some(Ok(segment)), Some(Ok(offset)), Some(Ok(index)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(ScanPosition { segment, offset, index: u32::try_from(index).ok()? })
}

pub fn filter(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let (_, group) = group_of(ctx, &input)?;
    let names = strings(&input, "logStreamNames");
    let prefix = text(&input, "logStreamNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        return Err(invalid("Parameters logStreamNames and logStreamNamePrefix are mutually exclusive."));
    }
    let pattern = Pattern::parse(text(&input, "filterPattern").unwrap_or_default())
        .map_err(|e| invalid(format!("Invalid filter pattern: {e}.")))?;
    let from = match text(&input, "nextToken") {
        Some(t) => Some(parse_scan_token(t).ok_or_else(|| invalid("The specified nextToken is invalid."))?),
        None => None,
    };
    // FilterLogEvents' endTime is inclusive.
    let end = int(&input, "endTime").map(|e| e.saturating_add(1));
    let w = window(int(&input, "startTime"), end, retained_since(ctx, &group));
    let want = |stream: &str| {
        (names.is_empty() || names.iter().any(|n| n == stream)) && prefix.is_none_or(|p| stream.starts_with(p))
    };
    let limits =
        Limits { events: int(&input, "limit").unwrap_or(10_000) as usize, bytes: MAX_BYTES, budget: SCAN_BUDGET };
    let mut page = events_of(ctx.app, &group)?.scan(from, &want, w, &pattern, limits)?;
    page.events.sort_by_key(|(_, k, _)| *k);
    let events: Vec<Value> = page
        .events
        .into_iter()
        .map(|(stream, k, e)| {
            json!({
                "logStreamName": stream,
                "timestamp": e.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion_time,
                "eventId": format!("{:020}{:010}", k.seq, k.index),
            })
        })
        .collect();
    let mut out = json!({"events": events, "searchedLogStreams": []});
    if let Some(next) = page.next {
        out["nextToken"] = json!(scan_token(next));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ApiError;

    #[test]
    fn a_batch_splits_into_rejected_and_kept_events() {
        let now = 100 * DAY_MS;
        let stamps = [now - 20 * DAY_MS, now - 10 * DAY_MS, now - 2 * DAY_MS, now, now + HOUR_MS, now + 3 * HOUR_MS];
        assert_eq!(split(&stamps, now, None), Split { too_old: 1, expired: 1, too_new: 5 });
        assert_eq!(split(&stamps, now, Some(7)), Split { too_old: 1, expired: 2, too_new: 5 });
        assert_eq!(split(&stamps, now, Some(30)), Split { too_old: 1, expired: 1, too_new: 5 });
        assert_eq!(split(&[now], now, Some(1)), Split { too_old: 0, expired: 0, too_new: 1 });
    }

    #[test]
    fn tokens_round_trip_and_refuse_what_they_did_not_write() {
        let k = Key { timestamp: 1_700_000_000_123, seq: 42, index: 7 };
        for d in [Direction::Forward, Direction::Backward] {
            assert_eq!(parse_token(&token(d, k)), Some((d, k)));
        }
        for bad in ["", "f/", "x/0000", "f/12", &format!("b/{}", "9".repeat(50))] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
        let p = ScanPosition { segment: 3, offset: 4096, index: 2 };
        assert_eq!(parse_scan_token(&scan_token(p)), Some(p));
        for bad in ["", "1-2", "1-2-3-4", "g-1-1", "1-1-100000000"] {
            assert_eq!(parse_scan_token(bad), None, "{bad}");
        }
    }

    /// The typed decode takes exactly what the model's checks take, and refuses the rest in
    /// their words: the model's path is the oracle.
    #[test]
    fn the_typed_decode_agrees_with_the_models_checks() {
        let event = json!({"timestamp": 1, "message": "m"});
        let with = |member: &str, value: Value| {
            let mut body = json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [event]});
            if value.is_null() && member.starts_with('-') {
                body.as_object_mut().unwrap().remove(&member[1..]);
            } else {
                body[member] = value;
            }
            body.to_string()
        };
        let long = "x".repeat(513);
        let wide = "é".repeat(512);
        let many: Vec<Value> = (0..10_001).map(|_| event.clone()).collect();
        let bodies = [
            with("logGroupName", json!("/ecs/web")),
            with("logGroupName", json!(wide)),
            with("logGroupName", json!(long)),
            with("logGroupName", json!("")),
            with("logGroupName", json!(5)),
            with("-logGroupName", Value::Null),
            with("logStreamName", json!(long)),
            with("logEvents", json!([])),
            with("logEvents", json!(many)),
            with("logEvents", json!([{"timestamp": -1, "message": "m"}])),
            with("logEvents", json!([{"timestamp": 1, "message": ""}])),
            with("logEvents", json!([{"timestamp": 1.5, "message": "m"}])),
            with("logEvents", json!([{"timestamp": "1", "message": "m"}])),
            with("logEvents", json!([{"message": "m"}])),
            with("logEvents", json!([{"timestamp": 1, "message": "m", "extra": true}])),
            with("logEvents", json!({"timestamp": 1})),
            with("sequenceToken", json!("")),
            with("sequenceToken", json!("49590")),
            with("sequenceToken", Value::Null),
            with("entity", json!({"keyAttributes": {"Type": "Service"}})),
            with("entity", json!({"keyAttributes": {"Type": "Service", "Name": "web"}})),
            with("unknownMember", json!({"a": 1})),
            "".to_string(),
            "[]".to_string(),
            "{\"logGroupName\": ".to_string(),
        ];
        let words = |r: ApiResult<PutInput>| r.map_err(|e: ApiError| (e.code, e.message));
        for body in bodies {
            let typed = json::bulk::<PutInput>(&super::super::SERVICE, "PutLogEvents", body.as_bytes());
            let model = json::read(&super::super::SERVICE, "PutLogEvents", body.as_bytes()).and_then(|checked| {
                serde_json::from_value(Value::Object(checked)).map_err(|e| ApiError::serialization(e.to_string()))
            });
            assert_eq!(words(typed), words(model), "{}", &body[..body.len().min(200)]);
        }
    }
}
