//! Log events: PutLogEvents (CloudWatch's batch rules), GetLogEvents (one stream, paged both
//! ways with `f/` and `b/` tokens) and FilterLogEvents (the group's streams, filtered by a
//! pattern).

use berth_control::logs::LogGroup;
use berth_logs::pattern::Pattern;
use berth_logs::segments::{Direction, Event, Key, Limits, ScanPosition, Window};
use serde_json::{Value, json};

use super::streams::stream_named;
use super::{Ctx, events_of, group_named, group_of, int, invalid, now_ms};
use crate::ecs::{Obj, strings, text};
use crate::error::ApiResult;

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

pub fn put(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    if input.contains_key("entity") {
        return Err(invalid("Berth does not associate log events with entities: entity cannot be given."));
    }
    let (_, group) = group_named(ctx, text(&input, "logGroupName").unwrap_or_default())?;
    let stream = text(&input, "logStreamName").unwrap_or_default();
    stream_named(ctx, &group, stream)?;
    let given = input.get("logEvents").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut stamps = Vec::with_capacity(given.len());
    let mut messages = Vec::with_capacity(given.len());
    let mut size = 0;
    for e in &given {
        let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
        size += message.len() + EVENT_OVERHEAD;
        stamps.push(e.get("timestamp").and_then(Value::as_i64).unwrap_or_default());
        messages.push(message);
    }
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
    let events: Vec<Event> = kept
        .clone()
        .map(|i| Event { timestamp: stamps[i], ingestion_time: now, message: messages[i].to_string() })
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
    use super::*;

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
}
