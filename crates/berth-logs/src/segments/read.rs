//! Reading events back: a stream's events in timestamp order, a page at a time in either
//! direction ([`GroupLog::page`]), and the whole group in arrival order, filtered
//! ([`GroupLog::scan`]).

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};

use super::format::{self, KIND_BATCH};
use super::{BatchRef, Event, GroupLog, LogResult, io_at, segment_path};
use crate::pattern::Pattern;

/// The place of an event in its stream's order: timestamp, then the batch it came in, then
/// its place in the batch. Unique within a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub timestamp: i64,
    pub seq: u64,
    pub index: u32,
}

impl Key {
    /// The key just after this one: a forward cursor that starts past this event.
    pub fn next(self) -> Key {
        Key { index: self.index.saturating_add(1), ..self }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The earliest events at or after the cursor.
    Forward,
    /// The latest events strictly before the cursor.
    Backward,
}

/// Events in ascending order of their keys.
pub type Page = Vec<(Key, Event)>;

/// Where a scan goes on from: a segment, a record's offset in it, and the first event of
/// that record not yet given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPosition {
    pub segment: u64,
    pub offset: u64,
    pub index: u32,
}

/// A scan's matches (stream, key, event) in arrival order, and where the next page begins
/// (None: everything stored when the scan began has been read).
#[derive(Debug, Default)]
pub struct ScanPage {
    pub events: Vec<(String, Key, Event)>,
    pub next: Option<ScanPosition>,
    pub scanned_bytes: u64,
}

/// How much one scan gives and reads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// At most this many events.
    pub events: usize,
    /// No more events once their messages (and 26 bytes each, as CloudWatch counts) reach this.
    pub bytes: usize,
    /// No more records read once this many bytes were.
    pub budget: u64,
}

impl Limits {
    pub const fn events(events: usize) -> Limits {
        Limits { events, bytes: usize::MAX, budget: u64::MAX }
    }
}

/// The events wanted by time: `start <= timestamp < end`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Window {
    pub const ALL: Window = Window { start: None, end: None };

    fn holds(&self, ts: i64) -> bool {
        self.start.is_none_or(|s| ts >= s) && self.end.is_none_or(|e| ts < e)
    }

    fn overlaps(&self, b: &BatchRef) -> bool {
        self.start.is_none_or(|s| b.last_ts >= s) && self.end.is_none_or(|e| b.first_ts < e)
    }
}

impl GroupLog {
    fn load(&self, b: &BatchRef) -> LogResult<Vec<(Key, Event)>> {
        let (seq, events) = format::read_batch(&segment_path(&self.dir, b.segment), b.offset)?;
        Ok(events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (Key { timestamp: e.timestamp, seq, index: i as u32 }, e))
            .collect())
    }

    /// Up to `limit` events of `stream` within `window`, at or after `cursor` (forward) or
    /// strictly before it (backward), in ascending order. Batches are read only as far
    /// as they can hold events that belong in the page.
    pub fn page(
        &self,
        stream: &str,
        direction: Direction,
        cursor: Option<Key>,
        window: Window,
        limit: usize,
    ) -> LogResult<Page> {
        let mut batches: Vec<BatchRef> = self.batches_of(stream).into_iter().filter(|b| window.overlaps(b)).collect();
        let mut picked: Vec<(Key, Event)> = Vec::new();
        if limit == 0 {
            return Ok(picked);
        }
        let wanted = |k: &Key| match (direction, cursor) {
            (_, None) => true,
            (Direction::Forward, Some(c)) => *k >= c,
            (Direction::Backward, Some(c)) => *k < c,
        };
        match direction {
            Direction::Forward => {
                batches.retain(|b| cursor.is_none_or(|c| b.last_ts >= c.timestamp));
                batches.sort_by_key(|b| (b.first_ts, b.seq));
                for b in &batches {
                    if picked.len() >= limit {
                        picked.sort_by_key(|(k, _)| *k);
                        picked.truncate(limit);
                        // Every event of this batch and the later ones comes after the last pick.
                        if picked[limit - 1].0 < (Key { timestamp: b.first_ts, seq: b.seq, index: 0 }) {
                            break;
                        }
                    }
                    picked.extend(self.load(b)?.into_iter().filter(|(k, _)| window.holds(k.timestamp) && wanted(k)));
                }
                picked.sort_by_key(|(k, _)| *k);
                picked.truncate(limit);
            }
            Direction::Backward => {
                batches.retain(|b| cursor.is_none_or(|c| b.first_ts <= c.timestamp));
                batches.sort_by_key(|b| std::cmp::Reverse((b.last_ts, b.seq)));
                for b in &batches {
                    if picked.len() >= limit {
                        picked.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
                        picked.truncate(limit);
                        if picked[limit - 1].0 > (Key { timestamp: b.last_ts, seq: b.seq, index: u32::MAX }) {
                            break;
                        }
                    }
                    picked.extend(self.load(b)?.into_iter().filter(|(k, _)| window.holds(k.timestamp) && wanted(k)));
                }
                picked.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
                picked.truncate(limit);
                picked.reverse();
            }
        }
        Ok(picked)
    }

    /// Reads the group's records in arrival order from `from` (None: the beginning), giving
    /// the events of the streams `want` accepts, within `window`, matching `pattern`: up to
    /// `limits.events` events and about `limits.bytes` of messages, stopping early once
    /// `limits.budget` bytes were read.
    pub fn scan(
        &self,
        from: Option<ScanPosition>,
        want: &dyn Fn(&str) -> bool,
        window: Window,
        pattern: &Pattern,
        limits: Limits,
    ) -> LogResult<ScanPage> {
        let mut bytes = 0usize;
        let full = |events: usize, bytes: usize| events >= limits.events || bytes >= limits.bytes;
        let mut page = ScanPage::default();
        let from = from.unwrap_or(ScanPosition { segment: 0, offset: 0, index: 0 });
        let mut scratch = Vec::new();
        for (id, len) in self.segment_extents().into_iter().filter(|&(id, _)| id >= from.segment) {
            let path = segment_path(&self.dir, id);
            let mut offset = if id == from.segment { from.offset } else { 0 };
            let mut skip = if id == from.segment { from.index } else { 0 };
            let Ok(file) = File::open(&path) else { continue }; // expired meanwhile
            let mut r = BufReader::with_capacity(1 << 20, file);
            r.seek(SeekFrom::Start(offset)).map_err(io_at(&path))?;
            while offset < len {
                if full(page.events.len(), bytes) || page.scanned_bytes >= limits.budget {
                    page.next = Some(ScanPosition { segment: id, offset, index: skip });
                    return Ok(page);
                }
                let Ok(Some((kind, size))) = format::next_record(&mut r, &mut scratch).map_err(io_at(&path))? else {
                    break;
                };
                if kind == KIND_BATCH {
                    let (seq, stream, events) = format::parse_batch(&scratch[1..])
                        .map_err(|why| super::LogError::Damaged { path: path.clone(), offset, why })?;
                    if want(stream) && self.live(stream, seq) {
                        for (i, (ts, ingested, message)) in events.into_iter().enumerate().skip(skip as usize) {
                            if full(page.events.len(), bytes) {
                                page.next = Some(ScanPosition { segment: id, offset, index: i as u32 });
                                return Ok(page);
                            }
                            if window.holds(ts) && pattern.matches_bytes(message) {
                                let key = Key { timestamp: ts, seq, index: i as u32 };
                                let text = String::from_utf8_lossy(message).into_owned();
                                let event = Event { timestamp: ts, ingestion_time: ingested, message: text };
                                bytes += message.len() + 26;
                                page.events.push((stream.to_string(), key, event));
                            }
                        }
                    }
                }
                skip = 0;
                offset += size as u64;
                page.scanned_bytes += size as u64;
            }
        }
        Ok(page)
    }
}
