//! The events of log groups, in append-only segment files.
//!
//! Each group has a directory of segments (`00000000000000000001.seg`, ...); the newest is
//! appended to and a new one begins past [`SEGMENT_BYTES`]. A segment is a run of records:
//!
//! ```text
//! len u32 | crc32 u32 | kind u8 | body          (len counts kind and body; crc covers them)
//! kind 1, a batch:   seq u64 | stream (u16 length, bytes) | count u32 | count × (timestamp i64, ingestion i64, message (u32 length, bytes))
//! kind 2, deletion:  seq u64 | stream (u16 length, bytes)
//! ```
//!
//! One `PutLogEvents` is one batch record, written and `fdatasync`ed before [`GroupLog::append`]
//! returns: what was acknowledged survives a crash. At open, a torn record at the end of the
//! newest segment (a crash mid-write) is cut off. An index in memory (rebuilt at open) keeps,
//! per stream, where each batch is and its time range, so a stream is read in timestamp order
//! without scanning other streams; [`GroupLog::scan`] reads the group's records in arrival
//! order, the fast path for filtering across streams. Retention drops whole segments whose
//! newest event has expired.

mod format;
mod read;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

pub use read::{Direction, Key, Limits, Page, ScanPage, ScanPosition, Window};

/// A segment is closed and a new one begun once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("log storage {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("log segment {path} is damaged at byte {offset}: {why}")]
    Damaged { path: PathBuf, offset: u64, why: String },
    #[error("a log event message is {0} bytes; at most {max} fit a record", max = u32::MAX)]
    TooLarge(usize),
    #[error("a log stream name is {0} bytes; at most 65535 fit a record")]
    NameTooLong(usize),
}

pub type LogResult<T> = Result<T, LogError>;

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_path_buf(), source }
}

/// One log event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it happened, in milliseconds since the epoch (the caller's timestamp).
    pub timestamp: i64,
    /// When Berth received it, in milliseconds since the epoch.
    pub ingestion_time: i64,
    pub message: String,
}

/// Where a batch lies and what it spans.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRef {
    pub seq: u64,
    pub segment: u64,
    pub offset: u64,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// What the index knows of a stream.
#[derive(Debug, Clone, Default)]
pub struct StreamSummary {
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    pub stored_bytes: u64,
    pub events: u64,
}

#[derive(Debug, Default)]
struct StreamIndex {
    batches: Vec<BatchRef>,
    summary: StreamSummary,
}

#[derive(Debug, Clone, Copy)]
struct SegmentMeta {
    id: u64,
    len: u64,
    newest_ts: i64,
}

struct Inner {
    segments: Vec<SegmentMeta>,
    active: File,
    streams: HashMap<String, StreamIndex>,
    next_seq: u64,
}

/// The events of one log group.
pub struct GroupLog {
    dir: PathBuf,
    segment_bytes: u64,
    inner: Mutex<Inner>,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn sync_dir(dir: &Path) -> LogResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_at(dir))
}

fn create_segment(dir: &Path, id: u64) -> LogResult<File> {
    let path = segment_path(dir, id);
    let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_at(&path))?;
    sync_dir(dir)?;
    Ok(file)
}

impl GroupLog {
    /// Opens (or creates) the group's directory and rebuilds its index, cutting off a torn
    /// record at the end of the newest segment.
    pub fn open(dir: &Path) -> LogResult<GroupLog> {
        Self::open_with(dir, SEGMENT_BYTES)
    }

    pub fn open_with(dir: &Path, segment_bytes: u64) -> LogResult<GroupLog> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let mut ids: Vec<u64> = fs::read_dir(dir)
            .map_err(io_at(dir))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let mut streams: HashMap<String, StreamIndex> = HashMap::new();
        let mut segments = Vec::new();
        let mut next_seq = 1;
        for (n, &id) in ids.iter().enumerate() {
            let path = segment_path(dir, id);
            let newest = n + 1 == ids.len();
            let mut meta = SegmentMeta { id, len: 0, newest_ts: i64::MIN };
            let end = format::replay(&path, |offset, record| match record {
                format::Record::Batch { seq, stream, events } => {
                    let s = streams.entry(stream).or_default();
                    index_batch(s, id, offset, seq, &events);
                    meta.newest_ts = meta.newest_ts.max(events.last().map_or(i64::MIN, |e| e.timestamp));
                    next_seq = next_seq.max(seq + 1);
                }
                format::Record::Deleted { seq, stream } => {
                    streams.remove(&stream);
                    next_seq = next_seq.max(seq + 1);
                }
            })?;
            match end {
                format::End::Clean(len) => meta.len = len,
                format::End::Torn { offset, why } if newest => {
                    tracing::warn!(path = %path.display(), offset, why, "cutting a torn record off the newest log segment");
                    let f = OpenOptions::new().write(true).open(&path).map_err(io_at(&path))?;
                    f.set_len(offset).and_then(|_| f.sync_all()).map_err(io_at(&path))?;
                    meta.len = offset;
                }
                format::End::Torn { offset, why } => return Err(LogError::Damaged { path, offset, why }),
            }
            segments.push(meta);
        }
        if segments.is_empty() {
            segments.push(SegmentMeta { id: 1, len: 0, newest_ts: i64::MIN });
        }
        let active_id = segments.last().expect("one segment at least").id;
        let active = create_segment(dir, active_id)?;
        Ok(GroupLog {
            dir: dir.to_path_buf(),
            segment_bytes,
            inner: Mutex::new(Inner { segments, active, streams, next_seq }),
        })
    }

    /// Appends a batch of events of one stream (sorted here by timestamp, stably) and makes
    /// it durable before returning.
    pub fn append(&self, stream: &str, mut events: Vec<Event>) -> LogResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        events.sort_by_key(|e| e.timestamp);
        let mut inner = self.inner.lock().expect("log index lock");
        let seq = inner.next_seq;
        let record = format::batch(seq, stream, &events)?;
        let (id, offset) = self.write(&mut inner, &record)?;
        inner.next_seq += 1;
        let newest = events.last().expect("not empty").timestamp;
        let meta = inner.segments.last_mut().expect("active segment");
        meta.newest_ts = meta.newest_ts.max(newest);
        index_batch(inner.streams.entry(stream.to_string()).or_default(), id, offset, seq, &events);
        Ok(())
    }

    /// Forgets every event of a stream (a stream made again under the name starts empty).
    pub fn delete_stream(&self, stream: &str) -> LogResult<()> {
        let mut inner = self.inner.lock().expect("log index lock");
        if !inner.streams.contains_key(stream) {
            return Ok(());
        }
        let seq = inner.next_seq;
        let record = format::deletion(seq, stream)?;
        self.write(&mut inner, &record)?;
        inner.next_seq += 1;
        inner.streams.remove(stream);
        Ok(())
    }

    /// Writes a record durably to the active segment (beginning a new one when it is full):
    /// the segment and offset it went to.
    fn write(&self, inner: &mut Inner, record: &[u8]) -> LogResult<(u64, u64)> {
        let active = *inner.segments.last().expect("active segment");
        if active.len > 0 && active.len + record.len() as u64 > self.segment_bytes {
            let id = active.id + 1;
            inner.active = create_segment(&self.dir, id)?;
            inner.segments.push(SegmentMeta { id, len: 0, newest_ts: i64::MIN });
        }
        let meta = inner.segments.last_mut().expect("active segment");
        let path = segment_path(&self.dir, meta.id);
        let offset = meta.len;
        let written = inner.active.write_all(record).and_then(|_| inner.active.sync_data());
        if let Err(e) = written {
            // A partial write would leave a torn record before later ones: cut it now.
            let _ = inner.active.set_len(offset);
            return Err(io_at(&path)(e));
        }
        meta.len += record.len() as u64;
        Ok((meta.id, offset))
    }

    /// What the index knows of a stream (None: no events).
    pub fn summary(&self, stream: &str) -> Option<StreamSummary> {
        self.inner.lock().expect("log index lock").streams.get(stream).map(|s| s.summary.clone())
    }

    /// Removes the oldest segments whose newest event is older than `cutoff` (ms): the
    /// retention sweep. Returns how many were removed.
    pub fn expire_before(&self, cutoff: i64) -> LogResult<usize> {
        let mut inner = self.inner.lock().expect("log index lock");
        // When every event of the group has expired, the newest segment is closed too (and a
        // new one begun) so that it can go.
        let last = *inner.segments.last().expect("active segment");
        if last.len > 0 && inner.segments.iter().all(|s| s.newest_ts < cutoff) {
            inner.active = create_segment(&self.dir, last.id + 1)?;
            inner.segments.push(SegmentMeta { id: last.id + 1, len: 0, newest_ts: i64::MIN });
        }
        let active = inner.segments.last().expect("active segment").id;
        // Only the oldest segments, in order: a stream's deletion record is never dropped
        // while an older segment with that stream's earlier events stays.
        let expired: Vec<u64> =
            inner.segments.iter().take_while(|s| s.id != active && s.newest_ts < cutoff).map(|s| s.id).collect();
        for id in &expired {
            let path = segment_path(&self.dir, *id);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&path)(e)),
            }
        }
        inner.segments.retain(|s| !expired.contains(&s.id));
        for s in inner.streams.values_mut() {
            s.batches.retain(|b| !expired.contains(&b.segment));
        }
        inner.streams.retain(|_, s| !s.batches.is_empty());
        if !expired.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(expired.len())
    }

    /// The bytes of every stream's events, as CloudWatch counts them (message + 26 each).
    pub fn stored_bytes(&self) -> u64 {
        self.inner.lock().expect("log index lock").streams.values().map(|s| s.summary.stored_bytes).sum()
    }

    fn batches_of(&self, stream: &str) -> Vec<BatchRef> {
        let inner = self.inner.lock().expect("log index lock");
        inner.streams.get(stream).map(|s| s.batches.clone()).unwrap_or_default()
    }

    /// The segments (id, length) as they are now: what a scan may read.
    fn segment_extents(&self) -> Vec<(u64, u64)> {
        self.inner.lock().expect("log index lock").segments.iter().map(|s| (s.id, s.len)).collect()
    }

    /// Whether a batch of `stream` numbered `seq` is still live (its stream not deleted since).
    fn live(&self, stream: &str, seq: u64) -> bool {
        let inner = self.inner.lock().expect("log index lock");
        inner.streams.get(stream).is_some_and(|s| s.batches.first().is_some_and(|b| b.seq <= seq))
    }
}

fn index_batch(s: &mut StreamIndex, segment: u64, offset: u64, seq: u64, events: &[Event]) {
    let first_ts = events.first().map_or(0, |e| e.timestamp);
    let last_ts = events.last().map_or(0, |e| e.timestamp);
    s.batches.push(BatchRef { seq, segment, offset, first_ts, last_ts });
    let sum = &mut s.summary;
    sum.first_timestamp = Some(sum.first_timestamp.map_or(first_ts, |t| t.min(first_ts)));
    sum.last_timestamp = Some(sum.last_timestamp.map_or(last_ts, |t| t.max(last_ts)));
    let ingested = events.iter().map(|e| e.ingestion_time).max();
    sum.last_ingestion_time = sum.last_ingestion_time.max(ingested);
    sum.stored_bytes += events.iter().map(|e| e.message.len() as u64 + 26).sum::<u64>();
    sum.events += events.len() as u64;
}

/// Every group's log under one directory, opened on first use.
pub struct LogStore {
    root: PathBuf,
    groups: Mutex<HashMap<String, Arc<GroupLog>>>,
}

impl LogStore {
    pub fn new(root: PathBuf) -> LogStore {
        LogStore { root, groups: Mutex::new(HashMap::new()) }
    }

    /// The log of the group stored under `id` (a name safe as a directory, chosen by the
    /// caller: a group made again after deletion should get a new one).
    pub fn group(&self, id: &str) -> LogResult<Arc<GroupLog>> {
        let mut groups = self.groups.lock().expect("log groups lock");
        if let Some(g) = groups.get(id) {
            return Ok(g.clone());
        }
        let g = Arc::new(GroupLog::open(&self.root.join(id))?);
        groups.insert(id.to_string(), g.clone());
        Ok(g)
    }

    /// Removes a group's events for good.
    pub fn remove_group(&self, id: &str) -> LogResult<()> {
        self.groups.lock().expect("log groups lock").remove(id);
        let dir = self.root.join(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&dir)(e)),
        }
    }

    /// The ids of the groups that have a directory here (to sweep those no longer known).
    pub fn stored_groups(&self) -> LogResult<Vec<String>> {
        match fs::read_dir(&self.root) {
            Ok(entries) => Ok(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_at(&self.root)(e)),
        }
    }
}

#[cfg(test)]
mod tests;
